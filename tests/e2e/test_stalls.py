"""docs/operations.md "Timeouts": a silent step is pinged, and declared stalled only when its
worker answers no ping; real reference workers through the service (embedded mode: the ping
reaches them through their command poll, their pong as a report)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.service import Service, pid_alive, wait_for

STALL_AFTER = 2.0
PING_TIMEOUT = 1.0


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    svc = Service(
        tmp_path / "svc",
        env={
            "STEP_WATCH_SECONDS": "0.2",
            # A hung worker ignores SIGTERM: the delete's SIGKILL comes this much later.
            "LOCAL_KILL_TIMEOUT_SECONDS": "1",
            "LOCAL_WORKER_ARGS": "--duration 1.5 --tick 0.5",
        },
    ).start()
    yield svc
    svc.stop()
    svc.kill_workers()


def single(**fields: Any) -> dict[str, Any]:
    return {
        "symbol": "BTCUSDT",
        "type": "api_candles_5m",
        "time_range": "2024-01-01:2024-01-02",
        "stall_after": STALL_AFTER,
        **fields,
    }


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_hung_worker_is_declared_stalled_its_job_deleted_and_the_step_retried(
    service: Service,
) -> None:
    queue_id = service.start_queue(
        single(
            ping_timeout=PING_TIMEOUT,
            simulate={"hang_after": 2},
            retry={"limit": 1, "on": ["stalled"], "backoff": {"initial": 0.5, "jitter": 0}},
        )
    )

    def running() -> dict[str, Any] | None:
        step = service.queue(queue_id)["steps"][0]
        return step if step["status"] in ("started", "loading") and step["job_name"] else None

    # The first attempt's job, seen as it runs (polling for the hang itself could miss it on a
    # busy machine: it is declared stalled seconds later).
    first_job = wait_for(running, 20)["job_name"]
    pid = service.job_record(first_job)["pid"]
    bound = STALL_AFTER + PING_TIMEOUT + 1

    def stalled() -> dict[str, Any] | None:
        step = service.queue(queue_id)["steps"][0]
        return step if step["attempts_log"] and step["attempts_log"][0].get("class") else None

    step = wait_for(stalled, 60)
    first = step["attempts_log"][0]
    assert first["class"] == "stalled", step
    assert first["reason"].startswith("stalled: no report for"), first
    # Declared within stall_after + ping_timeout + 1 s of the worker's last report, as the
    # service measured the silence when it declared it.
    silent = float(re.search(r"no report for (\d+) s", first["reason"]).group(1))  # type: ignore[union-attr]
    assert silent <= bound, first
    # Its job is deleted: the hung process is killed (it ignores SIGTERM).
    wait_for(lambda: not pid_alive(pid), 10)

    # The retry (attempt 2 does not misbehave) finishes the queue.
    queue = service.wait_status(queue_id, {"finished", "error", "stopped"}, 30)
    assert queue["status"] == "finished", queue
    step = queue["steps"][0]
    assert [a["attempt"] for a in step["attempts_log"]] == [1, 2]
    assert step["attempts_log"][1].get("class") is None
    metrics = service.get("/metrics").text
    assert 'queue_manager_steps_stalled_total{target="loader-producer"} 1.0' in metrics


def test_a_hung_worker_without_a_retry_policy_fails_its_step(service: Service) -> None:
    queue_id = service.start_queue(single(ping_timeout=PING_TIMEOUT, simulate={"hang_after": 1}))
    queue = service.wait_status(queue_id, {"error", "finished", "stopped"}, 20)
    step = queue["steps"][0]
    assert step["status"] == "error" and step["error_class"] == "stalled", step
    assert "stalled" in queue["error_message"]


def test_a_slow_worker_that_answers_pings_is_never_stalled(service: Service) -> None:
    # Three reports, 3 s apart: each silence outlasts stall_after, so it is pinged, and answers.
    began = time.monotonic()
    queue_id = service.start_queue(
        single(ping_timeout=2.0, simulate={"report_every": 3}, retry={"limit": 2})
    )
    queue = service.wait_status(queue_id, {"finished", "error", "stopped"}, 30)
    assert time.monotonic() - began >= 3 * STALL_AFTER
    assert queue["status"] == "finished", queue
    step = queue["steps"][0]
    assert step["error_class"] is None
    assert len(step["attempts_log"]) == 1, step["attempts_log"]
    assert "silent step pinged" in service.log_path.read_text()
    assert "queue_manager_steps_stalled_total{" not in service.get("/metrics").text
