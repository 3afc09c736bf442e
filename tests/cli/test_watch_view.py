"""How `watch` folds WebSocket updates into the state it fetched (pure, no service needed)."""

from __future__ import annotations

from typing import Any

from queue_manager.cli.client import ws_url
from queue_manager.cli.watch_view import QueueView

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
