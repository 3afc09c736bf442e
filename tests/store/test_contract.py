"""The store contract (ports.StateStore): the same tests for every store."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from queue_manager.domain.errors import InvalidRequest
from queue_manager.domain.models import QueueState, QueueStatus, StepStatus
from queue_manager.domain.state import apply_telemetry
from queue_manager.domain.telemetry import Reported, TelemetryEvent
from queue_manager.ports import StateStore
from tests.store.conftest import Backend
from tests.store.helpers import BASE, full_queue, make_queue, update_one


def test_store_names_itself(store: StateStore, backend: Backend) -> None:
    assert store.name == backend.kind


async def test_ping(store: StateStore) -> None:
    await store.ping()


async def test_ping_proves_the_store_takes_writes(store: StateStore, backend: Backend) -> None:
    """Readiness (docs/operations.md#health) is a committed write, not a read: a store that
    answers reads but cannot write is not ready."""
    before = await backend.heartbeats()
    await store.ping()
    await store.ping()
    assert await backend.heartbeats() == before + 2


async def test_insert_get_round_trip_keeps_every_field(store: StateStore) -> None:
    queue = full_queue()
    stored, created = await store.insert(queue, None)
    assert created is True
    assert stored == queue
    got = await store.get(queue.id)
    assert got == queue
    assert got is not None
    assert got.model_dump(mode="json") == queue.model_dump(mode="json")
    # aware datetimes, microseconds kept
    assert got.updated_at == queue.updated_at and got.updated_at.tzinfo is not None
    assert got.steps[0].params == queue.steps[0].params


async def test_get_unknown(store: StateStore) -> None:
    assert await store.get("00000000-0000-4000-8000-000000000000") is None
    assert await store.get("no/such/../key") is None
    assert await store.get("") is None


async def test_idempotency_key_returns_the_first_queue(store: StateStore) -> None:
    first, second = make_queue(), make_queue()
    got, created = await store.insert(first, "key-1")
    assert (got.id, created) == (first.id, True)
    got, created = await store.insert(second, "key-1")
    assert (got, created) == (first, False)
    assert await store.get(second.id) is None
    # another key is another queue; keys are opaque strings of any shape
    got, created = await store.insert(second, "key/2 with spaces & ünïcode " + "x" * 300)
    assert (got.id, created) == (second.id, True)


async def test_idempotency_key_under_concurrent_retries(store: StateStore) -> None:
    queues = [make_queue() for _ in range(10)]
    results = await asyncio.gather(*(store.insert(q, "retried") for q in queues))
    assert sum(created for _, created in results) == 1
    assert len({q.id for q, _ in results}) == 1
    winner = results[0][0].id
    assert [
        q.id for q in (await store.page(status=None, symbol=None, limit=100, cursor=None)).items
    ] == [winner]


async def test_update_applies_mutate_and_returns_the_stored_copy(store: StateStore) -> None:
    queue = make_queue()
    await store.insert(queue, None)

    def mutate(q: QueueState) -> bool:
        q.records_written = 42
        q.steps[0].status = StepStatus.LOADING
        q.status = QueueStatus.LOADING
        return True

    updated = await update_one(store, queue.id, mutate)
    assert updated is not None
    assert (updated.records_written, updated.status) == (42, QueueStatus.LOADING)
    assert await store.get(queue.id) == updated
    page = await store.page(status=QueueStatus.LOADING, symbol=None, limit=10, cursor=None)
    assert [q.id for q in page.items] == [queue.id]


async def test_update_writes_nothing_when_mutate_reports_no_change(store: StateStore) -> None:
    queue = make_queue()
    await store.insert(queue, None)

    def no_change(q: QueueState) -> bool:
        q.records_written = 999  # changed in memory, but reported as unchanged
        return False

    result = await update_one(store, queue.id, no_change)
    assert result is not None
    assert await store.get(queue.id) == queue


async def test_update_unknown_is_none(store: StateStore) -> None:
    called = False

    def mutate(q: QueueState) -> bool:
        nonlocal called
        called = True
        return True

    assert await update_one(store, "00000000-0000-4000-8000-000000000000", mutate) is None
    assert await update_one(store, "bad/key", mutate) is None
    assert called is False


async def _insert_timeline(store: StateStore, n: int) -> list[QueueState]:
    statuses = [QueueStatus.PENDING, QueueStatus.LOADING, QueueStatus.FINISHED]
    queues = [
        make_queue(
            created_at=BASE + timedelta(seconds=i, microseconds=i),
            status=statuses[i % 3],
            symbol="ETHUSDT" if i % 2 else "BTCUSDT",
        )
        for i in range(n)
    ]
    for q in queues:
        await store.insert(q, None)
    return queues


async def _walk(
    store: StateStore, *, status: QueueStatus | None, symbol: str | None, limit: int
) -> tuple[list[str], int]:
    ids: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await store.page(status=status, symbol=symbol, limit=limit, cursor=cursor)
        pages += 1
        assert len(page.items) <= limit
        ids += [q.id for q in page.items]
        if page.next_cursor is None:
            return ids, pages
        assert page.items, "a cursor never points past the end"
        cursor = page.next_cursor


async def test_page_newest_first_and_cursor_walks_every_queue(store: StateStore) -> None:
    queues = await _insert_timeline(store, 25)
    newest_first = [q.id for q in reversed(queues)]
    first = await store.page(status=None, symbol=None, limit=10, cursor=None)
    assert [q.id for q in first.items] == newest_first[:10]
    assert first.items[0] == queues[-1]
    ids, pages = await _walk(store, status=None, symbol=None, limit=7)
    assert ids == newest_first  # no duplicate, no gap, in order
    assert pages == 4
    ids, pages = await _walk(store, status=None, symbol=None, limit=25)
    assert (ids, pages) == (newest_first, 1)
    everything = await store.page(status=None, symbol=None, limit=1000, cursor=None)
    assert everything.next_cursor is None and len(everything.items) == 25


@pytest.mark.parametrize("limit", [1, 3, 4])
async def test_page_filters_with_cursor(store: StateStore, limit: int) -> None:
    queues = await _insert_timeline(store, 25)
    newest_first = list(reversed(queues))
    for status in (QueueStatus.PENDING, QueueStatus.LOADING, QueueStatus.FINISHED):
        ids, _ = await _walk(store, status=status, symbol=None, limit=limit)
        assert ids == [q.id for q in newest_first if q.status is status]
    ids, _ = await _walk(store, status=None, symbol="ETHUSDT", limit=limit)
    assert ids == [q.id for q in newest_first if q.symbol == "ETHUSDT"]
    ids, _ = await _walk(store, status=QueueStatus.LOADING, symbol="BTCUSDT", limit=limit)
    assert ids == [
        q.id for q in newest_first if q.symbol == "BTCUSDT" and q.status is QueueStatus.LOADING
    ]
    empty = await store.page(status=QueueStatus.STOPPED, symbol=None, limit=limit, cursor=None)
    assert empty.items == [] and empty.next_cursor is None
    none = await store.page(status=None, symbol="XRPUSDT", limit=limit, cursor=None)
    assert none.items == [] and none.next_cursor is None


async def test_page_by_id_prefix(store: StateStore) -> None:
    """`id_prefix` keeps exactly the queues whose id starts with it (the CLI's short ids)."""
    ids = [
        "223746ea-0000-4000-8000-000000000001",
        "223746ea-0000-4000-8000-000000000002",
        "223746eb-0000-4000-8000-000000000003",
        "22374700-0000-4000-8000-000000000004",
    ]
    for n, qid in enumerate(ids):
        await store.insert(make_queue(created_at=BASE + timedelta(seconds=n), queue_id=qid), None)

    async def matching(prefix: str, status: QueueStatus | None = None) -> list[str]:
        page = await store.page(status=status, symbol=None, limit=10, cursor=None, id_prefix=prefix)
        return [q.id for q in page.items]

    assert await matching("223746ea") == [ids[1], ids[0]]  # newest first
    assert await matching("223746eb") == [ids[2]]
    assert await matching("223746") == [ids[2], ids[1], ids[0]]
    assert await matching(ids[3]) == [ids[3]]
    assert await matching("223746ef") == []
    assert await matching("223746ea", status=QueueStatus.LOADING) == []


async def test_page_top_level_and_created_range_with_cursor(store: StateStore) -> None:
    """`top_level` leaves out a backfill's children; `created_from` (inclusive) and
    `created_to` (exclusive) keep the queues created in that range; both walk with a cursor."""
    queues = []
    for i in range(12):
        queue = make_queue(created_at=BASE + timedelta(minutes=i))
        queue.parent = queues[0].id if i % 3 == 2 else None
        queues.append(queue)
        await store.insert(queue, None)
    newest_first = list(reversed(queues))

    async def walk(limit: int, **filters: Any) -> list[str]:
        ids: list[str] = []
        cursor = None
        while True:
            page = await store.page(status=None, symbol=None, limit=limit, cursor=cursor, **filters)
            ids += [q.id for q in page.items]
            if page.next_cursor is None:
                return ids
            cursor = page.next_cursor

    top = [q.id for q in newest_first if q.parent is None]
    assert 0 < len(top) < len(queues)
    assert await walk(3, top_level=True) == top
    start, end = BASE + timedelta(minutes=3), BASE + timedelta(minutes=8)
    in_range = [q.id for q in newest_first if start <= q.created_at < end]
    assert len(in_range) == 5  # minutes 3..7: the start is in, the end out
    assert await walk(2, created_from=start, created_to=end) == in_range
    assert await walk(2, created_from=start) == [
        q.id for q in newest_first if q.created_at >= start
    ]
    assert await walk(4, created_to=end) == [q.id for q in newest_first if q.created_at < end]
    assert await walk(2, created_from=start, created_to=end, top_level=True) == [
        q.id for q in newest_first if start <= q.created_at < end and q.parent is None
    ]
    children = await walk(2, parent=queues[0].id, created_from=start)
    assert children == [
        q.id for q in newest_first if q.parent == queues[0].id and q.created_at >= start
    ]
    assert await walk(5, created_from=end, created_to=start) == []


async def test_page_breaks_ties_of_the_same_instant(store: StateStore) -> None:
    same = [make_queue(created_at=BASE) for _ in range(9)]
    for q in same:
        await store.insert(q, None)
    ids, _ = await _walk(store, status=None, symbol=None, limit=2)
    assert ids == sorted((q.id for q in same), reverse=True)


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        "!!!",
        base64.urlsafe_b64encode(b'{"a": 1}').decode(),
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
    ],
)
async def test_bad_cursor_is_invalid_request(store: StateStore, cursor: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await store.page(status=None, symbol=None, limit=10, cursor=cursor)
    assert caught.value.errors[0]["field"] == "cursor"


async def test_list_active_and_count_by_status(store: StateStore) -> None:
    by_status: dict[QueueStatus, list[str]] = {}
    for i, status in enumerate(list(QueueStatus) * 2):
        q = make_queue(created_at=BASE + timedelta(seconds=i), status=status)
        await store.insert(q, None)
        by_status.setdefault(status, []).append(q.id)
    active = await store.list_active()
    assert sorted(q.id for q in active) == sorted(
        by_status[QueueStatus.QUEUED]
        + by_status[QueueStatus.PENDING]
        + by_status[QueueStatus.LOADING]
        + by_status[QueueStatus.STOPPING]
    )
    assert all(not q.status.terminal for q in active)
    assert await store.count_by_status() == {s.value: 2 for s in QueueStatus}


async def test_empty_store(store: StateStore) -> None:
    assert await store.list_active() == []
    assert await store.count_by_status() == {}
    page = await store.page(status=None, symbol=None, limit=10, cursor=None)
    assert page.items == [] and page.next_cursor is None


async def test_concurrent_updates_lose_nothing(store: StateStore, backend: Backend) -> None:
    """200 increments from coroutines of this store and of a second instance (another replica)."""
    queue = make_queue()
    await store.insert(queue, None)
    other = await backend.open()

    def increment(q: QueueState) -> bool:
        q.records_written += 1
        q.steps[0].attempts += 1
        return True

    writers = [store if i % 2 else other for i in range(200)]
    results = await asyncio.gather(*(update_one(w, queue.id, increment) for w in writers))
    assert all(r is not None for r in results)
    final = await store.get(queue.id)
    assert final is not None
    assert (final.records_written, final.steps[0].attempts) == (200, 200)
    # every writer saw a distinct count: each increment applied to the freshest copy
    assert sorted(r.records_written for r in results if r is not None) == list(range(1, 201))


async def test_concurrent_telemetry_keeps_the_maximum(store: StateStore, backend: Backend) -> None:
    """Telemetry applied out of order by two replicas: counters only grow, terminal is sticky."""
    queue = make_queue()
    await store.insert(queue, None)
    other = await backend.open()
    producer = queue.steps[0].telemetry_id

    def telemetry(records: int, status: Reported = Reported.LOADING) -> TelemetryEvent:
        return TelemetryEvent(
            queue_id=queue.id, status=status, producer=producer, records_written=records
        )

    def apply(event: TelemetryEvent) -> Callable[[QueueState], bool]:
        def mutate(q: QueueState) -> bool:
            return apply_telemetry(q, q.steps[0], event, BASE).changed

        return mutate

    events = [telemetry(n) for n in range(1, 151)]
    events.reverse()  # the newest first: later, smaller counts must not win
    events.insert(75, telemetry(150, Reported.FINISHED))
    await asyncio.gather(
        *(update_one(store if i % 2 else other, queue.id, apply(e)) for i, e in enumerate(events))
    )
    final = await store.get(queue.id)
    assert final is not None
    assert final.steps[0].records_written == 150
    assert final.steps[0].status is StepStatus.FINISHED
    assert final.status is QueueStatus.FINISHED
