"""A queue's history in the store (docs/api.md, `GET /queues/{id}/events`): written in the same
transaction as the change it records, so history and state never disagree — for every store."""

from __future__ import annotations

from datetime import timedelta

import pytest

from queue_manager.domain import history
from queue_manager.domain.errors import DependencyUnavailable
from queue_manager.domain.history import EventKind, QueueEvent
from queue_manager.domain.models import QueueState, QueueStatus, StepStatus
from queue_manager.ports import Store
from tests.store.helpers import BASE, make_queue


def event(kind: EventKind, to: str, step: int | None = None, **more: object) -> QueueEvent:
    return QueueEvent(at=BASE, kind=kind, to=to, step=step, actor="api:token:ci", **more)


async def start(store: Store, key: str | None = None) -> QueueState:
    queue = make_queue()
    created = [event(EventKind.QUEUE_STATUS, "pending", message="created")]
    history.number(queue, created)
    stored, _ = await store.insert(queue, key, created)
    return stored


def step_loading(queue: QueueState) -> list[QueueEvent]:
    queue.steps[0].status = StepStatus.LOADING
    events = [
        event(EventKind.STEP_STATUS, "loading", step=0, from_="launching"),
        event(EventKind.QUEUE_STATUS, "loading", from_="pending"),
    ]
    history.number(queue, events)
    return events


async def test_a_new_queue_and_its_first_event_are_stored_together(store: Store) -> None:
    queue = await start(store, key="nightly")
    assert [(e.seq, e.kind, e.to, e.message) for e in await store.events(queue.id, after=0,
            limit=10)] == [(1, EventKind.QUEUE_STATUS, "pending", "created")]  # fmt: skip
    # A replayed start returns the first queue and writes no second history.
    again = make_queue()
    replayed, created = await store.insert(again, "nightly", [event(EventKind.COMMAND, "x")])
    assert not created and replayed.id == queue.id
    assert len(await store.events(queue.id, after=0, limit=10)) == 1
    assert await store.events(again.id, after=0, limit=10) == []


async def test_a_change_writes_its_events_with_the_state(store: Store) -> None:
    queue = await start(store)
    stored = (await store.update_many({queue.id: step_loading}))[queue.id]
    assert stored is not None and stored.event_seq == 3
    got = await store.events(queue.id, after=0, limit=10)
    assert [(e.seq, e.kind, e.step, e.from_, e.to) for e in got] == [
        (1, EventKind.QUEUE_STATUS, None, None, "pending"),
        (2, EventKind.STEP_STATUS, 0, "launching", "loading"),
        (3, EventKind.QUEUE_STATUS, None, "pending", "loading"),
    ]
    assert got[1].actor == "api:token:ci" and got[1].at == BASE
    assert (await store.get(queue.id)) == stored  # the counter is stored with the queue


async def test_progress_and_no_change_write_no_event(store: Store) -> None:
    queue = await start(store)

    def progress(q: QueueState) -> list[QueueEvent]:
        q.steps[0].records_written = 500
        return []

    await store.update_many({queue.id: progress, "no-such-queue": progress})
    await store.update_many({queue.id: lambda q: None})
    stored = await store.get(queue.id)
    assert stored is not None and stored.steps[0].records_written == 500
    assert stored.event_seq == 1
    assert len(await store.events(queue.id, after=0, limit=10)) == 1


async def test_events_page_after_a_cursor(store: Store) -> None:
    queue = await start(store)
    for _ in range(3):
        await store.update_many({queue.id: step_loading})
    assert [e.seq for e in await store.events(queue.id, after=0, limit=3)] == [1, 2, 3]
    assert [e.seq for e in await store.events(queue.id, after=3, limit=3)] == [4, 5, 6]
    assert [e.seq for e in await store.events(queue.id, after=6, limit=3)] == [7]
    assert await store.events(queue.id, after=7, limit=3) == []
    assert await store.events("no-such-queue", after=0, limit=3) == []


async def test_a_failed_history_write_leaves_the_state_unchanged(store: Store) -> None:
    """Atomic both ways: an event that cannot be written (its seq is taken) takes the change
    of state down with it."""
    queue = await start(store)

    def reuse_seq(q: QueueState) -> list[QueueEvent]:
        q.steps[0].status = StepStatus.LOADING
        q.status = QueueStatus.LOADING
        q.event_seq += 1
        return [event(EventKind.QUEUE_STATUS, "loading", seq=1)]

    with pytest.raises(DependencyUnavailable):
        await store.update_many({queue.id: reuse_seq})
    stored = await store.get(queue.id)
    assert stored is not None and stored.status is QueueStatus.PENDING and stored.event_seq == 1
    assert [e.to for e in await store.events(queue.id, after=0, limit=10)] == ["pending"]


async def test_retention_deletes_the_history_with_its_queue(store: Store) -> None:
    ended = await start(store)
    kept = await start(store)

    def finish(q: QueueState) -> list[QueueEvent]:
        q.status = QueueStatus.FINISHED
        q.finished_at = BASE + timedelta(days=1)
        return step_loading(q)

    await store.update_many({ended.id: finish})
    assert await store.delete_ended(BASE + timedelta(days=30), limit=10) == [ended.id]
    assert await store.events(ended.id, after=0, limit=10) == []
    assert len(await store.events(kept.id, after=0, limit=10)) == 1
