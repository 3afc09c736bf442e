"""The overview's use case (docs/api.md "GET /stats/overview"): the store counts the window's
queues, the domain makes the answer."""

from __future__ import annotations

from typing import Protocol

from queue_manager.domain.overview import Overview, RunStats, Window, overview, since
from queue_manager.ports import Clock, StatsStore


class _Counts(StatsStore, Protocol):
    async def count_by_status(self) -> dict[str, int]: ...


class OverviewService:
    def __init__(self, store: _Counts, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def overview(self, window: Window) -> Overview:
        now = self._clock.now()
        stats: RunStats = await self._store.run_stats(since(window, now))
        return overview(window, now, stats, await self._store.count_by_status())
