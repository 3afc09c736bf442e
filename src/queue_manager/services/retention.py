"""Retention: queues that ended more than RETENTION_DAYS ago are deleted, a small batch at a
time, so the pruner never holds the store long enough to delay telemetry or listings."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog

from queue_manager.domain.errors import DependencyUnavailable
from queue_manager.ports import Clock, ServiceMetrics, StateStore

log = structlog.get_logger(__name__)

BATCH = 200


class Pruner:
    def __init__(
        self,
        *,
        store: StateStore,
        metrics: ServiceMetrics,
        clock: Clock,
        keep: timedelta,
        period: float,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.keep = keep
        self.period = period

    async def run(self) -> None:
        while True:
            try:
                await self.sweep()
            except DependencyUnavailable as exc:
                log.warning("retention sweep postponed", reason=exc.detail)
            await asyncio.sleep(self.period)

    async def sweep(self) -> int:
        """Delete everything expired now; returns how many queues went."""
        cutoff = self.clock.now() - self.keep
        total = 0
        while True:
            deleted = await self.store.delete_ended(cutoff, BATCH)
            if deleted:
                self.metrics.queues_pruned(len(deleted))
                total += len(deleted)
                log.info("ended queues deleted", count=len(deleted), before=cutoff.isoformat())
            if len(deleted) < BATCH:
                return total
            await asyncio.sleep(0)  # let telemetry and requests in between batches
