"""A worker's recoverable error (`error` with `finished: false`) on the page: the step keeps
running and says how many it had and the latest (docs/worker-protocol.md)."""

from __future__ import annotations

from datetime import UTC, datetime

from playwright.sync_api import Page, expect

from queue_manager.api.worker_auth import WorkerTokens
from tests.support.service import Service
from tests.ui.conftest import WORKER_TOKEN_SECRET, Shots, node, open_dashboard


def report(service: Service, queue_id: str, producer: str, body: dict[str, object]) -> None:
    token = WorkerTokens(WORKER_TOKEN_SECRET.encode()).token(producer)  # the step run's own
    answer = service.post(
        "/internal/telemetry",
        json={"queue_id": queue_id, "producer": producer, **body},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 202, answer.text


def test_a_step_with_warnings_keeps_running_and_shows_the_latest(
    page: Page, service: Service, shots: Shots
) -> None:
    queue_id = service.start_queue(
        {"symbol": "BTCUSDT", "type": "ws_trades", "time_range": "2024-08-01:2024-08-01"}
    )
    service.wait_status(queue_id, {"loading"}, 30)
    producer = service.queue(queue_id)["steps"][0]["telemetry_id"]
    for offset in (41, 97):
        report(
            service,
            queue_id,
            producer,
            {
                "event": "error",
                "finished": False,
                "error_message": f"cannot store record at offset {offset}: not JSON",
                "sent_at": datetime.now(UTC).isoformat(),
            },
        )
    open_dashboard(page, service, f"#/queues/{queue_id}")
    node(page, 0).click()
    facts = page.locator(".step-facts .facts")
    expect(facts).to_contain_text("Warnings")
    expect(facts).to_contain_text("2 (the worker went on)")
    expect(page.locator("p.warning")).to_have_text(
        "Latest warning: cannot store record at offset 97: not JSON"
    )
    expect(node(page, 0)).not_to_have_attribute("data-status", "error")
    expect(page.locator(".timeline li[data-kind='step.warning']")).to_have_count(2)
    shots(page, "step-warnings")
    service.post(f"/queues/stop?queue_id={queue_id}&force=true")
