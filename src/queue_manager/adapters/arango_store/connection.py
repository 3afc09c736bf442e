"""What every part of the ArangoDB store is given: the database once open, the error guard,
the retry loop, stream transactions, and this process's turns per queue.

A decision that spans documents runs in one stream transaction; one that must not overlap
another (admission, a backfill's recount) first writes a lock document, so a second
transaction writing it meanwhile conflicts, is aborted and runs again after the first committed.
A lock document is written with UPSERT: the first two writers of a lock that does not exist yet
may both insert it, and the second then fails with a unique-constraint error (1210) that means
exactly what a conflict means — run again — so it is retried as one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar

import aiohttp
from arangoasync.exceptions import ArangoError, ArangoServerError

from queue_manager.adapters.arango_store.errors import ERR_UNIQUE, ErrorScrubber, server_codes
from queue_manager.adapters.arango_store.retry import Contended, Retry
from queue_manager.domain.errors import DependencyUnavailable

T = TypeVar("T")
#: an AQL text and its bind parameters
Query = tuple[str, dict[str, Any]]


async def rows(txn: Any, query: Query) -> list[Any]:
    """Run one AQL query (in a transaction, or not) and read all it returns."""
    async with await txn.aql.execute(query[0], bind_vars=query[1]) as cursor:
        return [row async for row in cursor]


async def take_lock(txn: Any, lock: Query) -> None:
    """Write the lock document first thing in `txn` (see the module docstring)."""
    try:
        await rows(txn, lock)
    except ArangoServerError as exc:
        if server_codes(exc)[1] == ERR_UNIQUE:
            raise Contended(str(exc)) from exc
        raise


async def abort(txn: Any) -> None:
    # On failure the server expires the abandoned stream transaction by itself.
    with suppress(ArangoError, aiohttp.ClientError, OSError):
        await txn.abort_transaction()


class Database:
    def __init__(self, errors: ErrorScrubber, max_attempts: int) -> None:
        #: the driver's database, once open
        self.handle: Any = None
        self.guard = errors.guard
        self.retry = Retry(errors.guard, max_attempts)
        # In-process writers of one queue take turns; replicas are handled by `_rev`.
        self._queue_locks: dict[str, asyncio.Lock] = {}
        self._queue_waiters: dict[str, int] = {}

    def require(self) -> Any:
        if self.handle is None:
            raise DependencyUnavailable("store", "not open")
        return self.handle

    async def query(self, action: str, query: Query) -> list[Any]:
        """One AQL query on its own (its own transaction)."""
        db = self.require()
        async with self.guard(action):
            return await rows(db, query)

    async def commit(
        self, write: Sequence[str], body: Callable[[Any], Awaitable[T]], lock: Query | None = None
    ) -> T:
        """`body` in one stream transaction writing `write` (after the `lock` document, if
        any), committed, or aborted if anything fails. One attempt: run it through `retry`."""
        txn = await self.require().begin_transaction(write=list(write))
        try:
            if lock is not None:
                await take_lock(txn, lock)
            result = await body(txn)
            await txn.commit_transaction()
        except BaseException:
            await abort(txn)
            raise
        return result

    async def transaction(
        self,
        action: str,
        write: Sequence[str],
        body: Callable[[Any], Awaitable[T]],
        lock: Query | None = None,
    ) -> T:
        """`commit`, run again while contended."""
        return await self.retry(action, lambda: self.commit(write, body, lock))

    @asynccontextmanager
    async def queue_turn(self, queue_id: str) -> AsyncIterator[None]:
        """This process's writers of one queue, one at a time."""
        lock = self._queue_locks.setdefault(queue_id, asyncio.Lock())
        self._queue_waiters[queue_id] = self._queue_waiters.get(queue_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            left = self._queue_waiters[queue_id] - 1
            if left:
                self._queue_waiters[queue_id] = left
            else:
                del self._queue_waiters[queue_id]
                del self._queue_locks[queue_id]
