"""Rate-limit breakers in the store (docs/operations.md "Rate-limit groups"): the same contract
on SQLite and ArangoDB. Replicas tripping a group at once store one breaker, and exactly one of
them is told it opened it (so the history says so once)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from queue_manager.domain import rate_limits as rules
from queue_manager.domain.rate_limits import Breaker
from tests.store.conftest import Backend

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def _tripping(
    now: datetime, retry_after: float | None, queue_id: str
) -> Callable[[Breaker | None], Breaker | None]:
    def change(current: Breaker | None) -> Breaker | None:
        return rules.trip(current, "exchange", now, retry_after, "HTTP 429", queue_id=queue_id)

    return change


async def test_no_breaker_until_a_group_trips_then_every_replica_sees_it(backend: Backend) -> None:
    one = await backend.open()
    other = await backend.open()
    assert await other.breakers() == []
    before, after = await one.trip_breaker("exchange", _tripping(NOW, 7, "q1"))
    assert before is None
    assert after is not None and after.open_until == NOW + timedelta(seconds=7)
    assert await other.breakers() == [after]


async def test_a_trip_that_changes_nothing_writes_nothing(backend: Backend) -> None:
    store = await backend.open()
    _, opened = await store.trip_breaker("exchange", _tripping(NOW, 7, "q1"))
    before, after = await store.trip_breaker("exchange", lambda current: None)
    assert before == after == opened
    assert await store.breakers() == [opened]


async def test_an_open_breaker_is_extended_in_place(backend: Backend) -> None:
    store = await backend.open()
    await store.trip_breaker("exchange", _tripping(NOW, 7, "q1"))
    later = NOW + timedelta(seconds=2)
    before, after = await store.trip_breaker("exchange", _tripping(later, 60, "q2"))
    assert before is not None and after is not None
    assert not rules.opened(before, after, later)
    assert after.open_until == later + timedelta(seconds=60)
    assert after.queue_id == "q1"  # still the opening's
    assert [b.open_until for b in await store.breakers()] == [after.open_until]


async def test_replicas_tripping_at_once_store_one_breaker_and_one_opens_it(
    backend: Backend,
) -> None:
    replicas = [await backend.open() for _ in range(4)]
    tries = [
        replica.trip_breaker("exchange", _tripping(NOW, 7 + i, f"q{i}"))
        for i, replica in enumerate(replicas * 3)
    ]
    results = await asyncio.gather(*tries)
    opened = [after for before, after in results if after and rules.opened(before, after, NOW)]
    assert len(opened) == 1
    stored = await replicas[0].breakers()
    assert len(stored) == 1
    # The opening stays the first writer's; the later waits extended it to the longest.
    assert stored[0].opened_at == NOW and stored[0].queue_id == opened[0].queue_id
    assert stored[0].open_until == NOW + timedelta(seconds=7 + len(tries) - 1)


async def test_groups_are_apart_and_a_breaker_outlives_the_process(backend: Backend) -> None:
    first = await backend.open()
    await first.trip_breaker("exchange", _tripping(NOW, 7, "q1"))

    def other_group(current: Breaker | None) -> Breaker | None:
        return rules.trip(current, "futures", NOW, None, "HTTP 418")

    await first.trip_breaker("futures", other_group)
    await first.close()
    backend.opened.remove(first)
    restarted = await backend.open()
    assert [b.group for b in await restarted.breakers()] == ["exchange", "futures"]
