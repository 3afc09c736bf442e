"""Retention in the store: exactly the queues that ended before the cutoff go, with their
idempotency keys; running ones stay whatever their age (docs/operations.md)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from queue_manager.domain import history
from queue_manager.domain.errors import DependencyUnavailable
from queue_manager.domain.history import EventKind, QueueEvent
from queue_manager.domain.models import QueueStatus
from queue_manager.ports import Store
from tests.store.conftest import Backend
from tests.store.helpers import BASE, make_queue

CUTOFF = BASE + timedelta(days=30)


async def _put(store: Store, status: QueueStatus, days: float, ended_days: float | None,
               key: str | None = None) -> str:  # fmt: skip
    queue = make_queue(created_at=BASE + timedelta(days=days), status=status)
    if ended_days is not None:
        queue.finished_at = BASE + timedelta(days=ended_days)
    stored, _ = await store.insert(queue, key)
    return stored.id


async def test_only_queues_that_ended_before_the_cutoff_are_deleted(store: Store) -> None:
    expired = {
        await _put(store, QueueStatus.FINISHED, 1, 2, key="nightly-1"),
        await _put(store, QueueStatus.ERROR, 3, 4),
        await _put(store, QueueStatus.STOPPED, 5, 29.9),
    }
    kept = {
        await _put(store, QueueStatus.LOADING, 0, None),  # old but running
        await _put(store, QueueStatus.STOPPING, 0, None),
        await _put(store, QueueStatus.FINISHED, 10, 30.5),  # created early, ended after
        await _put(store, QueueStatus.FINISHED, 31, 32),
    }
    deleted = await store.delete_ended(CUTOFF, limit=2)
    assert len(deleted) == 2 and set(deleted) <= expired  # oldest first, a batch at a time
    deleted += await store.delete_ended(CUTOFF, limit=2)
    assert set(deleted) == expired
    assert await store.delete_ended(CUTOFF, limit=2) == []
    for queue_id in expired:
        assert await store.get(queue_id) is None
    for queue_id in kept:
        assert await store.get(queue_id) is not None
    # The idempotency key went with its queue: the same key starts a new queue now.
    again = make_queue(status=QueueStatus.PENDING)
    _, created = await store.insert(again, "nightly-1")
    assert created


async def test_a_sweep_that_fails_halfway_leaves_everything_in_place(backend: Backend) -> None:
    """Retention is one transaction (issue 29): when deleting the history fails — another
    writer holds it — the queue, its key and its history all stay, and the next sweep takes
    them all."""
    store = await backend.open(max_attempts=2)
    queue = make_queue(status=QueueStatus.FINISHED)
    queue.finished_at = BASE + timedelta(days=1)
    event = QueueEvent(at=BASE, kind=EventKind.QUEUE_STATUS, to="finished", actor="test")
    history.number(queue, [event])
    await store.insert(queue, "nightly-1", [event])

    async with backend.history_held(queue.id):
        with pytest.raises(DependencyUnavailable):
            await store.delete_ended(CUTOFF, limit=10)
    assert await store.get(queue.id) is not None
    assert len(await store.events(queue.id, after=0, limit=10)) == 1
    replayed, created = await store.insert(make_queue(), "nightly-1")
    assert not created and replayed.id == queue.id  # the key still names it

    assert await store.delete_ended(CUTOFF, limit=10) == [queue.id]
    assert await store.get(queue.id) is None
    assert await store.events(queue.id, after=0, limit=10) == []
    _, created = await store.insert(make_queue(), "nightly-1")
    assert created
