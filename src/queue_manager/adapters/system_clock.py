"""The Clock port on the system's time (production's only clock)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        # The event loop times a sleep on the monotonic clock, not the wall clock: a sleep that
        # ends a hair early, or a wall clock set back meanwhile, is met by sleeping what is left.
        left = (when - self.now()).total_seconds()
        while left > 0:
            await asyncio.sleep(left)
            left = (when - self.now()).total_seconds()
