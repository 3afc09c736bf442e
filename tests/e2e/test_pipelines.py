"""docs/api.md, docs/pipelines.md end to end: the real service runs the documented examples with
real worker processes."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

from tests.support.service import Service, wait_for

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_single_example_returns_a_uuid_and_finishes(
    service: Service, single: dict[str, Any]
) -> None:
    answer = service.post("/queues/start", json=single)
    body = answer.json()
    assert answer.status_code == 200
    assert body["status"] == "success" and body["message"] == "Queue started"
    assert UUID4.match(body["data"]["queue_id"])
    queue = service.wait_status(body["data"]["queue_id"], {"finished"}, 30)
    assert queue["records_written"] > 0
    assert queue["loader_type"] == "job"
    assert queue["last_loaded_timestamp"] is not None


def test_historical_example_finishes_in_data_flow_order(
    service: Service, historical: dict[str, Any]
) -> None:
    began = time.monotonic()
    queue_id = service.start_queue(historical)
    queue = service.wait_status(queue_id, {"finished", "error", "stopped"}, 60)
    assert queue["status"] == "finished", queue
    assert time.monotonic() - began < 60
    steps = queue["steps"]
    assert all(s["status"] == "finished" and s["records_written"] > 0 for s in steps)
    loaders_connectors = steps[:4]
    builder, trainer = steps[4], steps[5]
    # graph-builder only after both connectors finished, gnn-trainer only after graph-builder
    assert ts(builder["started_at"]) >= max(ts(s["finished_at"]) for s in steps[2:4])
    assert ts(trainer["started_at"]) >= ts(builder["finished_at"])
    # loaders and connectors ran at the same time
    assert max(ts(s["started_at"]) for s in loaders_connectors) < min(
        ts(s["finished_at"]) for s in loaders_connectors
    )
    assert queue["records_written"] == steps[0]["records_written"] + steps[1]["records_written"]


#: the last instant of examples/realtime.json's time_range (2024-08-01:2024-08-01)
END_OF_RANGE = datetime(2024, 8, 1, 23, 59, 59, tzinfo=UTC)


def reported_up_to(queue: dict[str, Any], moment: datetime) -> list[int] | None:
    """Each step's records_written once every step has reported data up to `moment`."""
    steps = queue["steps"]
    if all(s["last_loaded_timestamp"] and ts(s["last_loaded_timestamp"]) >= moment for s in steps):
        return [s["records_written"] for s in steps]
    return None


def reported_past(queue: dict[str, Any], records: list[int]) -> dict[str, Any] | None:
    """The queue once every step has reported more than `records` (a later report)."""
    steps = queue["steps"]
    return (
        queue
        if all(s["records_written"] > n for s, n in zip(steps, records, strict=True))
        else None
    )


def test_realtime_example_runs_all_seven_steps_at_once_until_stopped(
    service: Service, realtime: dict[str, Any]
) -> None:
    queue_id = service.start_queue(realtime)

    def all_running() -> dict[str, Any] | None:
        queue = service.queue(queue_id)
        running = [s for s in queue["steps"] if s["status"] in ("started", "loading")]
        return queue if len(running) == 7 else None

    wait_for(all_running, 30)
    # Streaming steps never finish by themselves: each one reports the end of its time range
    # (where a batch step finishes), then reports again, and the queue is still loading.
    ended = wait_for(
        lambda: reported_up_to(service.queue(queue_id), END_OF_RANGE),
        30,
        what="every step to report the end of its time range",
    )
    queue = wait_for(
        lambda: reported_past(service.queue(queue_id), ended),
        30,
        what="every step to report again after the end of its time range",
    )
    assert queue["status"] == "loading"
    assert all(s["status"] == "loading" for s in queue["steps"])
    assert service.post(f"/queues/stop?queue_id={queue_id}").status_code == 200
    queue = service.wait_status(queue_id, {"stopped"}, 3 + 5)
    assert {s["status"] for s in queue["steps"]} == {"stopped"}
