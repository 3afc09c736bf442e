"""The embedded store: one SQLite file in WAL mode, safe for several processes at once.

Made of the parts every store is made of (`adapters.store_parts`); this module opens the file,
proves it takes writes, and hands each part the store's own transaction, read and write, so a
subclass watching them (bench/stores.py) sees every part's use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from queue_manager.adapters.sqlite_store import queries
from queue_manager.adapters.sqlite_store.admission import Admission
from queue_manager.adapters.sqlite_store.catalog import Catalog
from queue_manager.adapters.sqlite_store.connection import Access, Rows, SqliteFile
from queue_manager.adapters.sqlite_store.coverage import Coverage
from queue_manager.adapters.sqlite_store.queues import Queues
from queue_manager.adapters.sqlite_store.rate_limits import RateLimits
from queue_manager.adapters.sqlite_store.schedules import Schedules
from queue_manager.adapters.sqlite_store.sessions import Sessions
from queue_manager.adapters.sqlite_store.stats import Stats
from queue_manager.adapters.sqlite_store.tokens import Tokens
from queue_manager.adapters.store_parts import StoreParts


class SQLiteStore(StoreParts):
    name = "sqlite"

    def __init__(self, path: Path, *, busy_timeout_ms: int = 10_000) -> None:
        self._path = path
        self._file = SqliteFile(path, busy_timeout_ms)
        db = Access(
            transaction=self._transaction, read=self._read, write=self._write, point=self._point
        )
        self.queues = Queues(db)
        self.admission = Admission(db)
        self.schedules = Schedules(db)
        self.tokens = Tokens(db)
        self.sessions = Sessions(db)
        self.rate_limits = RateLimits(db)
        self.coverage = Coverage(db)
        self.catalog = Catalog(db)
        self.stats = Stats(db)

    async def open(self) -> None:
        await self._file.open()

    async def close(self) -> None:
        await self._file.close()

    async def ping(self) -> None:
        """Proves the store takes writes: one committed write to the one-row `store_heartbeat`
        table (a read, or a transaction begun and rolled back, succeeds on a file that cannot
        be written), through the checks every write makes."""
        async with self._transaction() as writer:
            await writer.execute(queries.HEARTBEAT, (datetime.now(UTC).isoformat(),))

    def _conns(self) -> tuple[aiosqlite.Connection, aiosqlite.Connection]:
        """(writer, reader)."""
        return self._file.conns()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._file.transaction() as writer:
            yield writer

    async def _read(self, sql: str, args: tuple[Any, ...]) -> Rows:
        return await self._file.read(sql, args)

    async def _write(self, sql: str, args: tuple[Any, ...]) -> int:
        return await self._file.write(sql, args)

    def _point(self, sql: str, args: tuple[Any, ...]) -> Any:
        return self._file.point(sql, args)
