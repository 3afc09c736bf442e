"""How `watch` folds WebSocket updates into the state it fetched (pure, no service needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import TypeAdapter
from rich.console import Console

from queue_manager.cli.client import ws_url
from queue_manager.cli.watch_render import progress_table
from queue_manager.cli.watch_view import QueueView
from queue_manager.domain import planner, state
from queue_manager.domain.requests import StartRequest
from queue_manager.domain.telemetry import Source, parse
from queue_manager.domain.updates import updates_for

QID = "7d0f5b0e-6c1a-4f57-9a55-0a6c8b8f3c11"


def snapshot(**over: Any) -> dict[str, Any]:
    state: dict[str, Any] = {
        "id": QID,
        "symbol": "BTCUSDT",
        "status": "loading",
        "records_written": 100,
        "start_time": "2024-01-01T00:00:00Z",
        "end_time": "2024-01-02T23:59:59Z",
        "updated_at": "2024-05-01T10:00:05Z",
        "steps": [
            {
                "index": 0,
                "target": "loader-producer",
                "type": "api",
                "status": "loading",
                "records_written": 100,
                "last_loaded_timestamp": "2024-01-02T00:00:00Z",
            },
        ],
    }
    state.update(over)
    return state


def step_update(status: str, records: int, **over: Any) -> dict[str, Any]:
    return {
        "event": "step.updated",
        "queue_id": QID,
        "step": 0,
        "target": "loader-producer",
        "type": "api",
        "status": status,
        "records_written": records,
        **over,
    }


def queue_update(status: str, records: int, updated_at: str) -> dict[str, Any]:
    return {
        "event": "queue.updated",
        "queue_id": QID,
        "status": status,
        "records_written": records,
        "updated_at": updated_at,
    }


def test_an_update_older_than_the_fetched_state_changes_nothing() -> None:
    view = QueueView.from_state(snapshot())

    view.apply(queue_update("pending", 0, "2024-05-01T10:00:01Z"))
    view.apply(step_update("started", 0))

    assert view.status == "loading"
    assert view.records_written == 100
    assert view.steps[0].status == "loading"
    assert view.steps[0].records_written == 100


def test_terminal_statuses_are_sticky() -> None:
    view = QueueView.from_state(snapshot())
    view.apply(step_update("finished", 300))
    view.apply(queue_update("finished", 300, "2024-05-01T10:00:09Z"))

    assert view.terminal
    assert not view.apply(queue_update("loading", 300, "2024-05-01T10:00:10Z"))
    view.steps[0].apply(step_update("loading", 310))
    assert view.status == "finished"
    assert view.steps[0].status == "finished"


def test_progress_follows_the_time_range() -> None:
    view = QueueView.from_state(snapshot())
    step = view.steps[0]

    fraction = step.fraction(view.start, view.end)
    assert fraction is not None and 0.49 < fraction < 0.51
    step.apply(step_update("finished", 200))
    assert step.fraction(view.start, view.end) == 1.0


def test_updates_of_other_queues_and_heartbeats_are_ignored() -> None:
    view = QueueView.from_state(snapshot())
    assert not view.apply({"event": "heartbeat"})
    assert not view.apply({**step_update("error", 999), "queue_id": "other"})
    assert view.steps[0].status == "loading"


def test_the_websocket_address_follows_the_api_address() -> None:
    assert ws_url("http://127.0.0.1:8000", None) == "ws://127.0.0.1:8000/ws/topic"
    assert ws_url("https://qm.example/api", QID) == f"wss://qm.example/api/ws/topic?queue_id={QID}"


def test_watch_follows_a_retry_the_state_machine_makes_and_shows_when_it_runs_again() -> None:
    """Updates as the service broadcasts them (domain/updates.py) for a 429 with Retry-After:
    the step is shown `retrying until` its time, then attempt 2 from `launching` on, although
    `retrying` and `launching` rank below the `loading` the first attempt reached."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    request = {
        "symbol": "BTCUSDT",
        "time_range": "2024-01-01:2024-01-02",
        "type": "api",
        "retry": {"limit": 2, "backoff": {"initial": 1, "factor": 2, "max": 60, "jitter": 0}},
    }
    queue = planner.plan(TypeAdapter(StartRequest).validate_python(request), QID)
    state.claim_ready(queue, t0)
    view = QueueView.from_state(queue.model_dump(mode="json"))

    def report(at: datetime, event: str, **fields: Any) -> None:
        step = queue.steps[0]
        raw = {"event": event, "queue_id": QID, "producer": step.telemetry_id, **fields}
        out = state.apply_telemetry(queue, step, parse(raw, Source.EVENTS), at)
        for update in updates_for(queue, out.steps):
            view.apply(orjson.loads(orjson.dumps(update)))

    def screen() -> str:
        console = Console(width=200, record=True, color_system=None)
        console.print(progress_table(view))
        return console.export_text()

    report(t0, "loading", records_written=10, finished=False)
    assert view.steps[0].status.value == "loading"
    report(t0 + timedelta(seconds=1), "error", http_status=429, retry_after=7, finished=True)
    assert view.steps[0].status.value == "retrying"
    shown = screen()
    assert "retrying until" in shown and "attempt" in shown

    out = state.relaunch_due(queue, t0 + timedelta(seconds=8))
    state.claim_ready(queue, t0 + timedelta(seconds=8))
    for update in updates_for(queue, {0, *out.steps}):
        view.apply(orjson.loads(orjson.dumps(update)))
    assert view.steps[0].status.value == "launching" and view.steps[0].attempts == 2
    assert "retrying" not in screen()
