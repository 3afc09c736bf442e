"""Admission in the store (docs/operations.md, MAX_RUNNING_QUEUES and MAX_RUNNING_JOBS): decided
atomically, so replicas admitting or claiming at once never exceed a limit — for every store."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta

from queue_manager.domain import history, state
from queue_manager.domain.history import QueueEvent
from queue_manager.domain.models import QueueState, QueueStatus, StepStatus, Target
from queue_manager.ports import Store
from tests.store.conftest import Backend
from tests.store.helpers import BASE, make_queue

AT = BASE + timedelta(hours=1)


async def queued(store: Store, *, seconds: int, priority: int = 0) -> QueueState:
    queue = make_queue(created_at=BASE + timedelta(seconds=seconds), status=QueueStatus.QUEUED)
    queue.queued_at = queue.created_at
    queue.priority = priority
    await store.insert(queue, None)
    return queue


def admit(queue: QueueState) -> list[QueueEvent]:
    outcome = state.admit(queue, AT)
    history.number(queue, outcome.events)
    return outcome.events


async def test_admission_fills_free_slots_by_priority_then_age(store: Store) -> None:
    running = make_queue(status=QueueStatus.LOADING)
    await store.insert(running, None)
    await store.insert(make_queue(status=QueueStatus.FINISHED), None)  # ended: not counted
    old_low = await queued(store, seconds=1)
    new_high = await queued(store, seconds=3, priority=5)
    old_high = await queued(store, seconds=2, priority=5)
    newest_low = await queued(store, seconds=4)
    assert await store.queued_order() == [old_high.id, new_high.id, old_low.id, newest_low.id]

    admitted = await store.admit(3, admit)  # one runs: two slots free
    assert [q.id for q in admitted] == [old_high.id, new_high.id]
    for queue_id in (old_high.id, new_high.id):
        stored = await store.get(queue_id)
        assert stored is not None and stored.status is QueueStatus.PENDING
        assert stored.queued_at is None
        assert [e.kind for e in await store.events(queue_id, after=0, limit=10)] == [
            "admission",
            "queue.status",
        ]
    assert await store.queued_order() == [old_low.id, newest_low.id]
    assert await store.admit(3, admit) == []  # full: nothing more
    page = await store.page(status=QueueStatus.QUEUED, symbol=None, limit=10, cursor=None)
    assert {q.id for q in page.items} == {old_low.id, newest_low.id}


async def test_replicas_admitting_at_once_never_exceed_the_limit(backend: Backend) -> None:
    replicas = [backend.opened[0], await backend.open()]
    for i in range(12):
        await queued(replicas[0], seconds=i, priority=i % 3)
    results = await asyncio.gather(*(replicas[i % 2].admit(4, admit) for i in range(10)))
    admitted = [q.id for batch in results for q in batch]
    assert len(admitted) == len(set(admitted)) == 4
    counts = await replicas[1].count_by_status()
    assert counts.get("pending") == 4 and counts.get("queued") == 8
    # the four admitted are the highest priority ones, oldest first among equals
    order = await replicas[1].queued_order()
    assert len(order) == 8
    stored = [await replicas[1].get(q) for q in admitted]
    assert all(q is not None and q.priority == 2 for q in stored)


def trainer_queue(status: StepStatus) -> QueueState:
    queue = make_queue(status=QueueStatus.LOADING, steps=2)
    queue.steps[1].target = Target.GNN_TRAINER
    queue.steps[0].status = StepStatus.FINISHED
    queue.steps[1].status = status
    return queue


async def test_a_claim_sees_the_running_jobs_of_every_queue(backend: Backend) -> None:
    store = backend.opened[0]
    for status in (StepStatus.LOADING, StepStatus.LAUNCHING, StepStatus.FINISHED):
        await store.insert(trainer_queue(status), None)
    waiting = trainer_queue(StepStatus.PENDING)
    await store.insert(waiting, None)
    seen: list[dict[str, int]] = []

    def look(queue: QueueState, running: Mapping[str, int]) -> list[QueueEvent] | None:
        seen.append(dict(running))
        queue.steps[1].status = StepStatus.LAUNCHING
        return []

    other = await backend.open()  # another replica sees the same jobs
    claimed = await other.claim(waiting.id, ["gnn-trainer", "visualizer"], look)
    assert claimed is not None and claimed.steps[1].status is StepStatus.LAUNCHING
    assert seen == [{"gnn-trainer": 2}]
    # The claim was written: the next one counts it.
    await store.claim(waiting.id, ["gnn-trainer"], lambda q, running: seen.append(dict(running)))
    assert seen[-1] == {"gnn-trainer": 3}
    assert await store.claim("no-such-queue", ["gnn-trainer"], look) is None


async def test_replicas_claiming_at_once_never_exceed_a_job_limit(backend: Backend) -> None:
    replicas = [backend.opened[0], await backend.open()]
    waiting = [trainer_queue(StepStatus.PENDING) for _ in range(8)]
    for queue in waiting:
        await replicas[0].insert(queue, None)
    limits = {Target.GNN_TRAINER: 3}

    def claim(queue: QueueState, running: Mapping[str, int]) -> list[QueueEvent] | None:
        counts = {Target(t): n for t, n in running.items()}
        outcome, _ = state.claim_ready(queue, AT, limits, counts)
        if not outcome.changed:
            return None
        history.number(queue, outcome.events)
        return outcome.events

    results = await asyncio.gather(
        *(replicas[i % 2].claim(q.id, ["gnn-trainer"], claim) for i, q in enumerate(waiting))
    )
    launched = [q for q in results if q is not None and q.steps[1].status is StepStatus.LAUNCHING]
    held = [q for q in results if q is not None and q.steps[1].status is StepStatus.PENDING]
    assert len(launched) == 3 and len(held) == 5
    assert all(q.steps[1].waiting and "MAX_RUNNING_JOBS" in q.steps[1].waiting for q in held)


async def test_a_running_step_counts_whatever_its_queues_status(backend: Backend) -> None:
    """A queue already `error` (fail-fast) may still have a step whose job runs: its slot is
    taken until that job ends, as SQLite has always counted it (issue 29)."""
    store = backend.opened[0]
    failing = trainer_queue(StepStatus.STARTED)
    failing.status = QueueStatus.ERROR
    await store.insert(failing, None)
    stopping = trainer_queue(StepStatus.LOADING)
    stopping.status = QueueStatus.STOPPING
    await store.insert(stopping, None)
    waiting = trainer_queue(StepStatus.PENDING)
    await store.insert(waiting, None)
    seen: list[dict[str, int]] = []

    def look(queue: QueueState, running: Mapping[str, int]) -> None:
        seen.append(dict(running))

    await store.claim(waiting.id, ["gnn-trainer"], look)
    assert seen == [{"gnn-trainer": 2}]
    # Its job ended: the slot is free again, whatever the queue's status.
    await store.update_many({failing.id: _step_ended})
    await store.claim(waiting.id, ["gnn-trainer"], look)
    assert seen[-1] == {"gnn-trainer": 1}


def _step_ended(queue: QueueState) -> list[QueueEvent]:
    queue.steps[1].status = StepStatus.ERROR
    return []


async def test_two_stores_admit_at_once_from_a_fresh_database(backend: Backend) -> None:
    """Storage never used: both stores set it up at once, then their first decisions race for
    the lock documents that do not exist yet (issue 29: one of them used to fail; an SQLite file
    new to four stores at once refused one of them as locked)."""
    fresh = backend.fresh()
    try:
        async with asyncio.TaskGroup() as both:  # one failing must not leave the other open
            opening = [both.create_task(fresh.open()) for _ in range(4)]
        stores = [task.result() for task in opening]
        for i in range(6):
            await queued(stores[0], seconds=i)
        results = await asyncio.gather(*(stores[i % 2].admit(3, admit) for i in range(8)))
        assert len({q.id for batch in results for q in batch}) == 3
        # A backfill's recount lock is made by its first recount: two replicas at once.
        parent = make_queue(steps=0)
        await stores[0].insert(parent, None)
        recounts = await asyncio.gather(
            *(stores[i % 2].update_parent(parent.id, lambda p, kids: None) for i in range(8))
        )
        assert all(r is not None and r.id == parent.id for r in recounts)
    finally:
        await fresh.close()
