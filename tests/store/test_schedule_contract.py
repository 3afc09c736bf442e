"""Schedules and backfills in the store (docs/schedules.md), for every store: a tick is decided
once whoever races for it, a backfill's children are admitted `max_parallel` at a time, and the
parent is recounted from its children in one transaction."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from queue_manager.domain import history, state
from queue_manager.domain.history import EventKind, QueueEvent
from queue_manager.domain.models import Backfill, QueueState, QueueStatus
from queue_manager.domain.schedules import RunOutcome, Schedule, ScheduleRun
from queue_manager.ports import Store
from tests.store.conftest import Backend
from tests.store.helpers import BASE, make_queue

TICK = datetime(2026, 1, 2, 0, 15, tzinfo=UTC)


def schedule(name: str = "nightly") -> Schedule:
    return Schedule(
        name=name,
        cron="15 0 * * *",
        template={"type": "api", "window": "1d"},
        symbols=["BTCUSDT"],
        created_at=BASE,
        updated_at=BASE,
        since=BASE,
    )


def run_of(queue: QueueState, tick: datetime = TICK) -> tuple[ScheduleRun, list[QueueEvent]]:
    queue.schedule, queue.scheduled_for = "nightly", tick
    event = QueueEvent(at=BASE, kind=EventKind.QUEUE_STATUS, to=queue.status, actor="scheduler")
    history.number(queue, [event])
    run = ScheduleRun(
        schedule="nightly", scheduled_for=tick, outcome=RunOutcome.STARTED, queue_ids=[queue.id]
    )
    return run, [event]


async def test_schedules_are_stored_changed_and_deleted_with_their_ticks(store: Store) -> None:
    assert await store.put_schedule(schedule())
    assert not await store.put_schedule(schedule())  # the name is taken
    assert await store.put_schedule(schedule("hourly"))
    assert [s.name for s in await store.list_schedules()] == ["hourly", "nightly"]

    def pause(s: Schedule) -> None:
        s.paused = True

    changed = await store.update_schedule("nightly", pause)
    assert changed is not None and changed.paused
    stored = await store.get_schedule("nightly")
    assert stored is not None and stored.paused
    assert await store.update_schedule("absent", pause) is None

    queue = make_queue()
    run, events = run_of(queue)
    assert await store.claim_tick(run, [(queue, events)])
    assert (await store.last_ticks()) == {"nightly": TICK}
    assert await store.delete_schedule("nightly")
    assert not await store.delete_schedule("nightly")
    assert await store.get_schedule("nightly") is None
    assert await store.last_ticks() == {}
    assert await store.get(queue.id) is not None  # its queues stay


async def test_a_tick_is_decided_once_even_when_replicas_race(backend: Backend) -> None:
    stores = [backend.opened[0], await backend.open()]
    queues = [make_queue() for _ in range(8)]
    claims = [run_of(q) for q in queues]
    won = await asyncio.gather(
        *(
            stores[i % 2].claim_tick(run, [(queue, events)])
            for i, (queue, (run, events)) in enumerate(zip(queues, claims, strict=True))
        )
    )
    assert sum(won) == 1
    winner = queues[won.index(True)]
    for queue in queues:
        stored = await stores[0].get(queue.id)
        # The losers wrote nothing: neither their queue nor its history.
        assert (stored is not None) == (queue is winner)
        assert (await stores[0].events(queue.id, after=0, limit=10) != []) == (queue is winner)
    runs = await stores[1].schedule_runs("nightly", before=None, limit=10)
    assert [(r.scheduled_for, r.queue_ids) for r in runs] == [(TICK, [winner.id])]
    # A missed tick is a decision too, recorded once, and the latest decided tick moves on.
    later = TICK + timedelta(days=1)
    missed = ScheduleRun(schedule="nightly", scheduled_for=later, outcome=RunOutcome.MISSED)
    assert await stores[0].claim_tick(missed, [])
    assert not await stores[1].claim_tick(missed, [])
    assert (await stores[1].last_ticks())["nightly"] == later
    newest = await stores[0].schedule_runs("nightly", before=None, limit=1)
    assert [r.outcome for r in newest] == [RunOutcome.MISSED]
    older = await stores[0].schedule_runs("nightly", before=later, limit=10)
    assert [r.scheduled_for for r in older] == [TICK]


async def test_active_runs_are_the_schedules_queues_not_yet_ended(store: Store) -> None:
    running, ended = make_queue(status=QueueStatus.LOADING), make_queue(status=QueueStatus.FINISHED)
    for n, queue in enumerate((running, ended)):
        run, events = run_of(queue, TICK + timedelta(days=n))
        assert await store.claim_tick(run, [(queue, events)])
    await store.insert(make_queue(status=QueueStatus.LOADING), None)  # not a run of it
    assert [q.id for q in await store.active_runs("nightly")] == [running.id]


def parent_queue(children: int) -> QueueState:
    parent = make_queue(steps=0, status=QueueStatus.PENDING)
    parent.backfill = Backfill(
        chunk="month", max_parallel=2, symbols=["BTCUSDT"], children=children
    )
    return parent


async def child_of(store: Store, parent: QueueState, seconds: int) -> QueueState:
    child = make_queue(created_at=BASE + timedelta(seconds=seconds), status=QueueStatus.QUEUED)
    child.queued_at, child.parent, child.max_parallel = child.created_at, parent.id, 2
    await store.insert(child, None)
    return child


def admitting(queue: QueueState) -> list[QueueEvent]:
    outcome = state.admit(queue, BASE + timedelta(hours=1))
    history.number(queue, outcome.events)
    return outcome.events


async def test_a_backfill_runs_max_parallel_children_and_its_parent_takes_no_slot(
    backend: Backend,
) -> None:
    stores = [backend.opened[0], await backend.open()]
    parent = parent_queue(5)
    await stores[0].insert(parent, None)
    kids = [await child_of(stores[0], parent, n) for n in range(5)]
    other = make_queue(created_at=BASE + timedelta(seconds=9), status=QueueStatus.QUEUED)
    other.queued_at = other.created_at
    await stores[0].insert(other, None)
    # Replicas admitting at once, no global limit: two children (the oldest) and the other queue.
    results = await asyncio.gather(*(stores[i % 2].admit(None, admitting) for i in range(6)))
    admitted = {q.id for batch in results for q in batch}
    assert admitted == {kids[0].id, kids[1].id, other.id}
    # Under MAX_RUNNING_QUEUES=4 the parent (pending, no steps) is not one of the running.
    finished = await stores[0].update_many({kids[0].id: _finish})
    assert finished[kids[0].id] is not None
    more = await stores[1].admit(4, admitting)
    assert [q.id for q in more] == [kids[2].id]


def _finish(queue: QueueState) -> list[QueueEvent]:
    queue.status = QueueStatus.FINISHED
    return []


async def test_the_parent_is_recounted_from_its_children_in_one_transaction(store: Store) -> None:
    parent = parent_queue(2)
    await store.insert(parent, None)
    kids = [await child_of(store, parent, n) for n in range(2)]
    seen: list[list[str]] = []

    def recount(q: QueueState, children: list[QueueState]) -> list[QueueEvent] | None:
        seen.append(sorted(c.id for c in children))
        assert q.backfill is not None
        q.backfill.progress = {"queued": len(children)}
        return []

    stored = await store.update_parent(parent.id, recount)
    assert stored is not None and stored.backfill is not None
    assert seen == [sorted(k.id for k in kids)]
    again = await store.get(parent.id)
    assert again is not None and again.backfill is not None
    assert again.backfill.progress == {"queued": 2}
    assert await store.update_parent("no-such-parent", recount) is None
    page = await store.page(status=None, symbol=None, limit=10, cursor=None, parent=parent.id)
    assert sorted(q.id for q in page.items) == sorted(k.id for k in kids)


async def test_a_schedules_runs_are_on_its_first_page_then_the_older_ones(store: Store) -> None:
    """The first page has no upper bound (issue 29: ArangoDB's used to compare with a sentinel
    that its collation sorts before every tick, and came back empty)."""
    ticks = [TICK + timedelta(days=n) for n in range(5)]
    for tick in ticks:
        run = ScheduleRun(schedule="nightly", scheduled_for=tick, outcome=RunOutcome.MISSED)
        assert await store.claim_tick(run, [])
    other = ScheduleRun(schedule="hourly", scheduled_for=TICK, outcome=RunOutcome.MISSED)
    assert await store.claim_tick(other, [])
    first = await store.schedule_runs("nightly", before=None, limit=2)
    assert [r.scheduled_for for r in first] == [ticks[4], ticks[3]]
    second = await store.schedule_runs("nightly", before=first[-1].scheduled_for, limit=2)
    assert [r.scheduled_for for r in second] == [ticks[2], ticks[1]]
    last = await store.schedule_runs("nightly", before=second[-1].scheduled_for, limit=2)
    assert [r.scheduled_for for r in last] == [ticks[0]]
    assert await store.schedule_runs("nightly", before=ticks[0], limit=2) == []
    assert await store.schedule_runs("never-ran", before=None, limit=2) == []


async def test_schedules_are_listed_in_code_point_order_of_their_names(store: Store) -> None:
    """As SQLite sorts text (bytes); ArangoDB's collation would put `a-c` after `ab`."""
    names = ["ab", "a-c", "a1", "b", "a"]
    for name in names:
        assert await store.put_schedule(schedule(name))
    assert [s.name for s in await store.list_schedules()] == sorted(names)
