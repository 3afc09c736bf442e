"""The rate-limit banner (docs/operations.md "Rate-limit groups"): while a group is open the
dashboard says which, why, and counts down to when its steps launch again; it goes when the
group closes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page, expect

from queue_manager.api.worker_auth import WorkerTokens
from tests.support.service import Service, wait_for
from tests.ui.conftest import WORKER_TOKEN_SECRET, Shots, open_dashboard

WAIT = 12  # seconds the exchange asks for


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    # Loaders that run long enough to be answered 429 while they run.
    svc = Service(
        tmp_path_factory.mktemp("ui-rate-limits") / "svc",
        env={"LOCAL_WORKER_ARGS": "--duration 60", "WORKER_TOKEN_SECRET": WORKER_TOKEN_SECRET},
    ).start()
    yield svc
    svc.stop()
    svc.kill_workers()


def test_an_open_group_shows_a_banner_with_a_countdown(
    page: Page, service: Service, shots: Shots
) -> None:
    open_dashboard(page, service)
    banner = page.locator("#rate-limits")
    expect(banner).to_be_hidden()

    queue_id = service.start_queue(
        {"symbol": "BTCUSDT", "type": "api", "time_range": "2024-08-01:2024-08-01"}
    )
    service.wait_status(queue_id, {"loading"}, 30)
    producer = service.queue(queue_id)["steps"][0]["telemetry_id"]
    token = WorkerTokens(WORKER_TOKEN_SECRET.encode()).token(producer)  # the step run's own
    answer = service.post(
        "/internal/telemetry",
        json={
            "event": "error",
            "queue_id": queue_id,
            "producer": producer,
            "error_message": f"HTTP 429 Too Many Requests (Retry-After: {WAIT})",
            "http_status": 429,
            "retry_after": WAIT,
            "sent_at": datetime.now(UTC).isoformat(),
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 202, answer.text
    wait_for(lambda: service.get("/rate-limits").json()["data"][0]["open"], 15)

    page.reload()
    page.locator("body[data-ready=true]").wait_for()
    expect(banner).to_be_visible()
    line = banner.locator('.rate-limit[data-group="exchange"]')
    expect(line).to_contain_text("Rate limit: exchange")
    expect(line).to_contain_text("429 Too Many Requests")
    countdown = line.locator(".countdown")
    first = countdown.text_content()
    assert first is not None and first.startswith("0:")
    expect(countdown).not_to_have_text(first, timeout=3000)  # it counts down
    shots(page, "rate-limit-banner")

    expect(banner).to_be_hidden(timeout=(WAIT + 10) * 1000)
    shots(page, "rate-limit-closed")
    service.post(f"/queues/stop?queue_id={queue_id}&force=true")
