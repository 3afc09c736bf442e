"""The SQLite file and its three connections; what every part of the store is given.

One writer (writes of this process take turns on it: one connection cannot hold two
transactions), one reader (reads never queue behind a write in WAL mode) and one plain sqlite3
connection for point reads, which run inline: a primary-key read takes microseconds, and handing
it to aiosqlite's thread would cost more than the read.

The file is watched by (device, inode): a file removed under the store is never written again
(what SQLite would write to an unlinked file is acknowledged, then lost), and another file moved
to the path (a restored copy) is opened in its place.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
import structlog
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_random_exponential

from queue_manager.adapters.sqlite_store.bootstrap import create_schema
from queue_manager.domain.errors import DependencyUnavailable

log = structlog.get_logger(__name__)

Rows = list[Any]


@dataclass(frozen=True)
class Access:
    """What a part of the store is given: a write transaction (IMMEDIATE, so nothing is written
    by another process between what it reads and what it writes), a read on the reader, one
    write statement outside a transaction (its rowcount), and a point read (one row or None).

    The store hands its own methods, so a subclass that watches them sees every part's use."""

    transaction: Callable[[], AbstractAsyncContextManager[aiosqlite.Connection]]
    read: Callable[[str, tuple[Any, ...]], Awaitable[Rows]]
    write: Callable[[str, tuple[Any, ...]], Awaitable[int]]
    point: Callable[[str, tuple[Any, ...]], Any]


class SqliteFile:
    def __init__(self, path: Path, busy_timeout_ms: int) -> None:
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._point: sqlite3.Connection | None = None
        #: (device, inode) of the file the connections have open
        self._file: tuple[int, int] | None = None
        self._write_lock = asyncio.Lock()

    async def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            await self._connect_all()
        except (sqlite3.Error, OSError) as exc:
            raise DependencyUnavailable("store", f"cannot open {self.path}: {exc}") from exc

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            await conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            # Switching a new file to WAL while another process does the same can be refused
            # at once with "database is locked", without waiting on the busy timeout (SQLite
            # will not wait where both could): try again for as long as that timeout.
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(_locked),
                stop=stop_after_delay(self._busy_timeout_ms / 1000),
                wait=wait_random_exponential(multiplier=0.002, max=0.1),
                reraise=True,
            ):
                with attempt:
                    await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            # an unclosed connection keeps its thread, and the process, alive
            await conn.close()
            raise
        return conn

    async def _connect_all(self) -> None:
        """Open the three connections on the file at the path, and note which file that is."""
        writer = await self._connect()
        reader: aiosqlite.Connection | None = None
        try:
            await create_schema(writer)
            reader = await self._connect()
            point = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            point.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            opened = _file_at(self.path)
            if opened is None:
                point.close()
                raise OSError(f"{self.path} vanished as it was opened")
        except BaseException:
            for conn in (writer, reader):
                if conn is not None:
                    await conn.close()
            raise
        self._writer, self._reader, self._point, self._file = writer, reader, point, opened

    async def close(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        if self._point is not None:
            self._point.close()
        self._reader = self._writer = self._point = None
        self._file = None

    def conns(self) -> tuple[aiosqlite.Connection, aiosqlite.Connection]:
        if self._writer is None or self._reader is None:
            raise DependencyUnavailable("store", "not open")
        return self._writer, self._reader

    async def _writable(self) -> aiosqlite.Connection:
        """The writer, once the file it has open is still the one at the path (see the module
        docstring); call it holding the write lock."""
        writer, _ = self.conns()
        try:
            found = _file_at(self.path)
        except OSError as exc:
            raise DependencyUnavailable("store", f"cannot look at {self.path}: {exc}") from exc
        if found == self._file:
            return writer
        if found is None:
            raise DependencyUnavailable(
                "store",
                f"{self.path} was removed while open: nothing is written until it is back "
                "(move it back, or restart the service to begin an empty one)",
            )
        old_writer, old_reader, old_point = self._writer, self._reader, self._point
        try:
            await self._connect_all()
        except (sqlite3.Error, OSError) as exc:
            raise DependencyUnavailable(
                "store", f"cannot open {self.path}, put there under the store: {exc}"
            ) from exc
        log.warning("store file replaced: reopened", path=str(self.path))
        for conn in (old_writer, old_reader):
            if conn is not None:
                with suppress(sqlite3.Error, ValueError):
                    await conn.close()
        if old_point is not None:
            old_point.close()
        return self.conns()[0]

    def _cannot_write(self, exc: sqlite3.Error) -> DependencyUnavailable:
        return DependencyUnavailable("store", f"cannot write {self.path}: {exc}")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction: IMMEDIATE takes the write lock before reading, so another
        process cannot write between our read and our write (no lost update)."""
        async with self._write_lock:
            writer = await self._writable()
            try:
                await _rollback(writer)  # one a failed rollback may have left open
                await writer.execute("BEGIN IMMEDIATE")
                try:
                    yield writer
                    await writer.execute("COMMIT")
                except BaseException:
                    await _rollback(writer)
                    raise
            except sqlite3.Error as exc:
                raise self._cannot_write(exc) from exc

    async def write(self, sql: str, args: tuple[Any, ...]) -> int:
        async with self._write_lock:
            writer = await self._writable()
            try:
                await _rollback(writer)
                cursor = await writer.execute(sql, args)
                return cursor.rowcount
            except sqlite3.Error as exc:
                raise self._cannot_write(exc) from exc

    async def read(self, sql: str, args: tuple[Any, ...]) -> Rows:
        _, reader = self.conns()
        try:
            return list(await reader.execute_fetchall(sql, args))
        except sqlite3.Error as exc:
            raise DependencyUnavailable("store", str(exc)) from exc

    def point(self, sql: str, args: tuple[Any, ...]) -> Any:
        if self._point is None:
            raise DependencyUnavailable("store", "not open")
        try:
            return self._point.execute(sql, args).fetchone()
        except sqlite3.Error as exc:
            raise DependencyUnavailable("store", str(exc)) from exc


def _locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def _file_at(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at `path`; None when there is none."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


async def _rollback(writer: aiosqlite.Connection) -> None:
    """Undo the open transaction, if any. A COMMIT that failed on I/O has been rolled back by
    SQLite already: rolling back again would only replace its cause with "cannot rollback - no
    transaction is active"."""
    if writer.in_transaction:
        with suppress(sqlite3.Error):
            await writer.execute("ROLLBACK")
