"""The rate-limit breakers part of the ArangoDB store (RateLimitStore): one document per group
(`queue_rate_limits`), keyed by the group's name. A trip is compare-and-set: it reads the
document, decides, and inserts it (a key taken meanwhile: another replica inserted it first) or
replaces it if its `_rev` is still the one read; either conflict runs the trip again on what the
other replica wrote, so replicas tripping at once write one after the other."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from arangoasync.exceptions import ArangoServerError

from queue_manager.adapters.arango_store import queries
from queue_manager.adapters.arango_store.connection import Database
from queue_manager.adapters.arango_store.errors import ERR_UNIQUE, server_codes
from queue_manager.adapters.arango_store.retry import Contended
from queue_manager.domain.rate_limits import Breaker


def _load(raw: dict[str, Any]) -> Breaker:
    return Breaker.model_validate({k: v for k, v in raw.items() if not k.startswith("_")})


class RateLimits:
    def __init__(self, db: Database) -> None:
        self._db = db

    def _collection(self) -> Any:
        return self._db.require().collection(queries.RATE_LIMITS_COLLECTION)

    async def breakers(self) -> list[Breaker]:
        found = await self._db.query("read rate-limit breakers", queries.breakers())
        return sorted((_load(row) for row in found), key=lambda b: b.group)

    async def trip_breaker(
        self, group: str, change: Callable[[Breaker | None], Breaker | None]
    ) -> tuple[Breaker | None, Breaker | None]:
        async def attempt() -> tuple[Breaker | None, Breaker | None]:
            coll = self._collection()
            raw = await coll.get(group)
            before = _load(raw) if raw is not None else None
            after = change(before)
            if after is None:
                return before, before
            doc = {"_key": group, **after.model_dump(mode="json")}
            if raw is None:
                try:
                    await coll.insert(doc, silent=True)
                except ArangoServerError as exc:
                    if server_codes(exc)[1] == ERR_UNIQUE:
                        raise Contended(str(exc)) from exc  # another replica inserted it first
                    raise
            else:
                await coll.replace(doc, if_match=raw["_rev"], silent=True)
            return before, after

        return await self._db.retry(f"trip rate-limit group {group}", attempt)
