"""The rate-limit breakers part of the SQLite store (RateLimitStore): one row per group, its
breaker's JSON. A trip reads and writes it in one IMMEDIATE transaction, so replicas tripping at
once take turns and each sees the write before it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from queue_manager.adapters.sqlite_store import queries
from queue_manager.adapters.sqlite_store.connection import Access
from queue_manager.domain.rate_limits import Breaker


class RateLimits:
    def __init__(self, db: Access) -> None:
        self._db = db

    async def breakers(self) -> list[Breaker]:
        rows = await self._db.read(queries.BREAKERS, ())
        return [Breaker.model_validate_json(row[0]) for row in rows]

    async def trip_breaker(
        self, group: str, change: Callable[[Breaker | None], Breaker | None]
    ) -> tuple[Breaker | None, Breaker | None]:
        async with self._db.transaction() as writer:
            rows: Any = await writer.execute_fetchall(queries.BREAKER, (group,))
            before = Breaker.model_validate_json(rows[0][0]) if rows else None
            after = change(before)
            if after is None:
                return before, before
            doc = after.model_dump_json().encode()
            await writer.execute(queries.BREAKER_PUT, (group, doc))
        return before, after
