"""Rate-limit groups in the engine (docs/operations.md "Rate-limit groups"): an open group holds
its steps with the reason, whoever asks to launch them; another group is not held; once it
closes, the held queues launch one by one at RATE_LIMIT_RELEASE_PER_SECOND."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from queue_manager.domain.history import EventKind
from queue_manager.domain.models import QueueState, StepStatus
from queue_manager.domain.rate_limits import RateLimitGroups
from queue_manager.services.rate_limit_release import RateLimitRelease
from queue_manager.services.rate_limits import RateLimits
from tests.services.conftest import Services
from tests.support.waiting import wait_until_async

API = {"symbol": "BTCUSDT", "type": "api", "time_range": "2024-01-01:2024-01-03"}
WS = {"symbol": "BTCUSDT", "type": "ws", "time_range": "2024-01-01:2024-01-03"}
LOADER, REST_TYPE = "loader-producer", "api_candles_1m"


@dataclass
class Limited:
    services: Services
    rate_limits: RateLimits
    release: RateLimitRelease

    async def start(self, body: dict[str, Any]) -> QueueState:
        return await self.services.start(body)

    def launched(self, queue: QueueState) -> bool:
        return any(spec.queue_id == queue.id for spec in self.services.launcher.launched)


@pytest.fixture
async def limited(services: Services) -> AsyncIterator[Limited]:
    rate_limits = RateLimits(
        store=services.store,
        groups=RateLimitGroups.default(),
        clock=services.clock,
        metrics=services.metrics,
        cache_seconds=0,  # every claim reads the store: no wait on a copy in these tests
        release_per_second=1.0,
    )
    services.engine.rate_limits = rate_limits
    release = RateLimitRelease(
        services.engine, rate_limits, store=services.store, clock=services.clock
    )
    yield Limited(services, rate_limits, release)


async def test_an_open_group_holds_its_steps_and_not_another_groups(limited: Limited) -> None:
    svc = limited.services
    first = await limited.start(API)
    assert limited.launched(first)
    await limited.rate_limits.trip(
        LOADER, REST_TYPE, 7, "HTTP 429 Too Many Requests", queue_id=first.id, step=0
    )

    held = await limited.start(API)
    other = await limited.start(WS)  # ws_candles_1m: in no group
    assert not limited.launched(held)
    assert limited.launched(other)
    step = (await svc.get(held.id)).steps[0]
    assert step.status is StepStatus.PENDING
    assert step.waiting is not None
    assert step.waiting.startswith("rate limit of group exchange open until ")
    assert step.waiting.endswith(": HTTP 429 Too Many Requests")
    assert await limited.rate_limits.held(LOADER, REST_TYPE) is not None
    assert await limited.rate_limits.held(LOADER, "ws_candles_1m") is None

    # The history of the queue whose failure opened it says so, once.
    events = await svc.store.events(first.id, after=0, limit=100)
    opened = [e for e in events if e.kind is EventKind.RATE_LIMIT]
    assert len(opened) == 1 and opened[0].actor == "rate-limiter" and opened[0].step == 0
    await limited.rate_limits.trip(LOADER, REST_TYPE, 7, "HTTP 429", queue_id=first.id, step=0)
    again = await svc.store.events(first.id, after=0, limit=100)
    assert [e.kind for e in again].count(EventKind.RATE_LIMIT) == 1

    # The reconciler's pass does not launch it either, open or closed-but-not-yet-its-turn.
    await svc.reconciler.reconcile()
    assert not limited.launched(held)
    svc.clock.advance(timedelta(seconds=7))
    await svc.reconciler.reconcile()
    assert not limited.launched(held)

    await limited.release.tick()
    assert limited.launched(held)
    assert (await svc.get(held.id)).steps[0].waiting is None
    assert 'queue_manager_rate_limit_open{group="exchange"} 0.0' in svc.metrics.render().decode()


async def test_a_closed_group_releases_its_held_queues_one_by_one(limited: Limited) -> None:
    svc = limited.services
    await limited.rate_limits.trip(LOADER, REST_TYPE, 10, "HTTP 429")
    assert 'queue_manager_rate_limit_open{group="exchange"} 1.0' in svc.metrics.render().decode()
    held = []
    for _ in range(4):
        svc.clock.advance(timedelta(milliseconds=1))  # oldest first: each a little younger
        held.append(await limited.start(API))
    assert not any(limited.launched(q) for q in held)

    svc.clock.advance(timedelta(seconds=10))
    releasing = asyncio.create_task(limited.release.tick())
    try:
        # One per second from the closing (1/s here), oldest first.
        for count in range(1, 5):
            await wait_until_async(
                lambda n=count: sum(limited.launched(q) for q in held) == n,  # type: ignore[misc]
                5,
                what=f"{count} held queues launched",
            )
            await wait_until_async(lambda: svc.clock.sleepers > 0 or releasing.done(), 5)
            assert [limited.launched(q) for q in held] == [i < count for i in range(4)]
            # Another pass meanwhile (the reconciler) launches none before its turn.
            await svc.reconciler.reconcile()
            assert sum(limited.launched(q) for q in held) == count
            svc.clock.advance(timedelta(seconds=1))
        await asyncio.wait_for(releasing, 5)
    finally:
        releasing.cancel()
    assert all(limited.launched(q) for q in held)
    # Each launched once.
    names = [s.name for s in svc.launcher.launched]
    assert len(names) == len(set(names))
