"""docs/api.md, docs/pipelines.md end to end: the real service runs the documented examples with
real worker processes."""

from __future__ import annotations

import re
import time
from datetime import datetime
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


def test_realtime_example_runs_all_seven_steps_at_once_until_stopped(
    service: Service, realtime: dict[str, Any]
) -> None:
    queue_id = service.start_queue(realtime)

    def all_running() -> dict[str, Any] | None:
        queue = service.queue(queue_id)
        running = [s for s in queue["steps"] if s["status"] in ("started", "loading")]
        return queue if len(running) == 7 else None

    wait_for(all_running, 30)
    time.sleep(2)
    queue = service.queue(queue_id)
    assert queue["status"] == "loading"  # streaming steps never finish by themselves
    assert service.post(f"/queues/stop?queue_id={queue_id}").status_code == 200
    queue = service.wait_status(queue_id, {"stopped"}, 3 + 5)
    assert {s["status"] for s in queue["steps"]} == {"stopped"}
