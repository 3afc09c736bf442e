"""The live update messages pushed to WebSocket clients (docs/api.md). Both kinds carry the
queue's `updated_at`, `started_at` and `finished_at`, so a client shows the same times as
`GET /queues/{id}` without deriving them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from queue_manager.domain.models import QueueState, Step


def queue_update(queue: QueueState) -> dict[str, Any]:
    update: dict[str, Any] = {
        "event": "queue.updated",
        "queue_id": queue.id,
        "status": queue.status.value,
        "records_written": queue.records_written,
        "last_loaded_timestamp": _iso(queue.last_loaded_timestamp),
        "error_message": queue.error_message,
        "updated_at": _iso(queue.updated_at),
        "started_at": _iso(queue.started_at),
        "finished_at": _iso(queue.finished_at),
        "text": f"Queue {queue.id} → {queue.status.value} ({queue.records_written} records)",
    }
    if queue.parent is not None:
        update["parent"] = queue.parent
    if queue.backfill is not None:
        update["progress"] = dict(queue.backfill.progress)
    return update


def step_update(queue: QueueState, step: Step) -> dict[str, Any]:
    return {
        "event": "step.updated",
        "queue_id": queue.id,
        "step": step.index,
        "target": step.target.value,
        "type": step.type,
        "status": step.status.value,
        "records_written": step.records_written,
        "last_loaded_timestamp": _iso(step.last_loaded_timestamp),
        "error_message": step.error_message,
        # which attempt this is, and when a `retrying` one runs again: a client following
        # the updates tells a relaunch (back to pending) from an update that came late
        "attempts": step.attempts,
        "retry_at": _iso(step.retry_at),
        "updated_at": _iso(queue.updated_at),
        "started_at": _iso(queue.started_at),
        "finished_at": _iso(queue.finished_at),
        "text": f"Queue {queue.id} step {step.index} {step.target.value} → "
        f"{step.status.value} ({step.records_written} records)",
    }


def updates_for(queue: QueueState, step_indexes: Iterable[int]) -> list[dict[str, Any]]:
    """Step updates first, then the queue's: a client sees the cause before the summary."""
    out = [step_update(queue, queue.steps[i]) for i in sorted(step_indexes)]
    out.append(queue_update(queue))
    return out


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
