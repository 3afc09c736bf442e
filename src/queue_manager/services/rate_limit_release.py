"""Releasing the steps a rate-limit group's breaker held, once it closes: spread over time
(RATE_LIMIT_RELEASE_PER_SECOND), not all at once, lest the release itself hit the limit again.

Every RATE_LIMIT_POLL_SECONDS each replica reads the breakers (and sets the metric). A breaker
seen closed whose release it has not planned yet (after a restart: every closed one, once) has
its held queues — those with a pending step whose `waiting` names the group — planned one by
one, the i-th at `until + i / per_second`, oldest queue first, and advanced at that time; until
then `RateLimits.gate` keeps holding them, whoever asks (the reconciler's pass too). Every
replica computes the same times for the same queues, and a claim is decided in the store, so
replicas releasing together launch each step once and at that pace, not faster.
"""

from __future__ import annotations

import asyncio

import structlog

from queue_manager.domain import rate_limits as rules
from queue_manager.domain.errors import DependencyUnavailable
from queue_manager.domain.models import QueueState, StepStatus
from queue_manager.domain.rate_limits import Breaker
from queue_manager.ports import Clock, StateStore
from queue_manager.services.engine import Engine
from queue_manager.services.rate_limits import RateLimits

log = structlog.get_logger(__name__)


class RateLimitRelease:
    def __init__(
        self,
        engine: Engine,
        rate_limits: RateLimits,
        *,
        store: StateStore,
        clock: Clock,
        period: float = 1.0,
    ) -> None:
        self.engine = engine
        self.rate_limits = rate_limits
        self.store = store
        self.clock = clock
        self.period = period

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except DependencyUnavailable as exc:
                log.warning("rate-limit release postponed", reason=exc.detail)
            await asyncio.sleep(self.period)

    async def tick(self) -> None:
        closed = self.rate_limits.unreleased(await self.rate_limits.refresh())
        if not closed:
            return
        queues = await self.store.list_active()
        for breaker in sorted(closed, key=lambda b: b.open_until):
            await self.release(breaker, queues)

    async def release(self, breaker: Breaker, queues: list[QueueState]) -> None:
        prefix = f"{rules.WAITING_PREFIX}{breaker.group} "
        held = sorted(
            (
                q
                for q in queues
                if any(
                    s.status is StepStatus.PENDING and (s.waiting or "").startswith(prefix)
                    for s in q.steps
                )
            ),
            key=lambda q: (q.created_at, q.id),
        )
        plan = self.rate_limits.plan_release(breaker, [q.id for q in held])
        if not held:
            return
        log.info(
            "rate limit closed: releasing held queues",
            group=breaker.group,
            queues=len(held),
            per_second=self.rate_limits.release_per_second,
        )
        for queue_id, turn in plan.items():
            await self.clock.sleep_until(turn)
            await self.engine.advance(queue_id)
