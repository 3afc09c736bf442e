"""Embedded state store: one SQLite file in WAL mode, safe for several processes at once."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite
import structlog

from queue_manager.adapters import cursor as cursors
from queue_manager.domain.errors import DependencyUnavailable
from queue_manager.domain.history import QueueEvent
from queue_manager.domain.identity import ApiToken, Role
from queue_manager.domain.models import (
    ACTIVE_QUEUE_STATUSES,
    RUNNING_QUEUE_STATUSES,
    QueueState,
    QueueStatus,
    StepStatus,
)
from queue_manager.domain.schedules import Schedule, ScheduleRun
from queue_manager.ports import Page

log = structlog.get_logger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS queue_state (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    symbol TEXT NOT NULL,
    created TEXT NOT NULL,
    version INTEGER NOT NULL,
    doc BLOB NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    jobs TEXT NOT NULL DEFAULT '',
    parent TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS queue_state_created ON queue_state (created DESC, id DESC);
CREATE INDEX IF NOT EXISTS queue_state_status ON queue_state (status, created DESC, id DESC);
CREATE INDEX IF NOT EXISTS queue_state_symbol ON queue_state (symbol, created DESC, id DESC);
CREATE TABLE IF NOT EXISTS idempotency_key (
    key TEXT PRIMARY KEY,
    queue_id TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_key_queue ON idempotency_key (queue_id);
CREATE TABLE IF NOT EXISTS queue_events (
    queue_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    doc BLOB NOT NULL,
    PRIMARY KEY (queue_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS schedules (
    name TEXT PRIMARY KEY,
    doc BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS schedule_runs (
    schedule TEXT NOT NULL,
    scheduled_for TEXT NOT NULL,
    doc BLOB NOT NULL,
    PRIMARY KEY (schedule, scheduled_for)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS api_tokens (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    last_used_at TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ended_sessions (
    id TEXT PRIMARY KEY,
    until REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ended_sessions_until ON ended_sessions (until);
"""

#: columns added after the first release, for files made before them
_ADDED_COLUMNS = {
    "priority": "INTEGER NOT NULL DEFAULT 0",
    "jobs": "TEXT NOT NULL DEFAULT ''",
    "parent": "TEXT NOT NULL DEFAULT ''",
}
_ADMISSION_INDEXES = """
CREATE INDEX IF NOT EXISTS queue_state_admission
    ON queue_state (status, priority DESC, created, id);
CREATE INDEX IF NOT EXISTS queue_state_jobs ON queue_state (jobs) WHERE jobs != '';
CREATE INDEX IF NOT EXISTS queue_state_parent ON queue_state (parent, created DESC, id DESC)
    WHERE parent != '';
"""
#: the readiness probe's proof that the file takes writes: one row, rewritten by every ping
_HEARTBEAT_TABLE = """
CREATE TABLE IF NOT EXISTS store_heartbeat (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n INTEGER NOT NULL,
    at TEXT NOT NULL
)
"""
_HEARTBEAT = (
    "INSERT INTO store_heartbeat (id, n, at) VALUES (1, 1, ?) "
    "ON CONFLICT (id) DO UPDATE SET n = n + 1, at = excluded.at"
)
#: a backfill's parent runs nothing itself: admission never counts it
_IS_PARENT = "json_extract(CAST(doc AS TEXT), '$.backfill') IS NOT NULL"
_RUNNING = tuple(s.value for s in RUNNING_QUEUE_STATUSES)
_RUNNING_STEPS = frozenset(s for s in StepStatus if s.running)


def _jobs(queue: QueueState) -> str:
    """The targets of its steps that run now, for the MAX_RUNNING_JOBS count."""
    return " ".join(s.target.value for s in queue.steps if s.status in _RUNNING_STEPS)


# SQLite's default limit on bound parameters is far above this; it keeps statements small.
_CHUNK = 500


def _dump(queue: QueueState) -> bytes:
    return queue.model_dump_json().encode()


def _load(doc: bytes | str) -> QueueState:
    return QueueState.model_validate_json(doc)


#: what retention deletes with a queue: its keys, its history, then the queue itself
_PER_QUEUE = (("idempotency_key", "queue_id"), ("queue_events", "queue_id"), ("queue_state", "id"))

# A (queue, seq) written twice would be a bug in the numbering: fail loudly, never overwrite.
_INSERT_EVENT = "INSERT INTO queue_events (queue_id, seq, doc) VALUES (?, ?, ?)"


async def _write_events(
    writer: aiosqlite.Connection, queue_id: str, events: Sequence[QueueEvent]
) -> None:
    if events:
        await writer.executemany(
            _INSERT_EVENT, [(queue_id, e.seq, e.model_dump_json().encode()) for e in events]
        )


async def _write_changes(
    writer: aiosqlite.Connection, changed: Sequence[tuple[QueueState, Sequence[QueueEvent]]]
) -> None:
    if not changed:
        return
    await writer.executemany(
        "UPDATE queue_state SET status = ?, version = version + 1, doc = ?, priority = ?, "
        "jobs = ? WHERE id = ?",
        [(q.status.value, _dump(q), q.priority, _jobs(q), q.id) for q, _ in changed],
    )
    history = [(q.id, e.seq, e.model_dump_json().encode()) for q, events in changed for e in events]
    if history:
        await writer.executemany(_INSERT_EVENT, history)


_INSERT_QUEUE = (
    "INSERT INTO queue_state (id, status, symbol, created, version, doc, priority, jobs, parent) "
    "VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?)"
)


def _queue_row(queue: QueueState) -> tuple[Any, ...]:
    return (
        queue.id,
        queue.status.value,
        queue.symbol,
        cursors.sort_key(queue.created_at),
        _dump(queue),
        queue.priority,
        _jobs(queue),
        queue.parent or "",
    )


class SQLiteStore:
    name = "sqlite"

    def __init__(self, path: Path, *, busy_timeout_ms: int = 10_000) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._point: sqlite3.Connection | None = None
        #: (device, inode) of the file the connections have open: a file removed or replaced
        #: under them is told by the path naming another one, or none
        self._file: tuple[int, int] | None = None
        # One connection cannot hold two transactions: writers in this process take turns.
        self._write_lock = asyncio.Lock()

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self._path, isolation_level=None)
        await conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    async def open(self) -> None:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            await self._connect_all()
        except (sqlite3.Error, OSError) as exc:
            raise DependencyUnavailable("store", f"cannot open {self._path}: {exc}") from exc

    async def _connect_all(self) -> None:
        """Open the writer, the reader and the point-read connection on the file at the path,
        and note which file that is."""
        writer = await self._connect()
        reader: aiosqlite.Connection | None = None
        try:
            await writer.executescript(SCHEMA)
            await self._migrate(writer)
            reader = await self._connect()
            # A primary-key read takes microseconds; handing it to aiosqlite's thread costs
            # more than the read itself, so point reads run inline on their own connection.
            point = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            point.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            opened = _file_at(self._path)
            if opened is None:
                point.close()
                raise OSError(f"{self._path} vanished as it was opened")
        except BaseException:
            for conn in (writer, reader):
                if conn is not None:
                    await conn.close()
            raise
        self._writer, self._reader, self._point, self._file = writer, reader, point, opened

    @staticmethod
    async def _migrate(writer: aiosqlite.Connection) -> None:
        have = {row[1] for row in await writer.execute_fetchall("PRAGMA table_info(queue_state)")}
        for column, definition in _ADDED_COLUMNS.items():
            if column not in have:
                await writer.execute(f"ALTER TABLE queue_state ADD COLUMN {column} {definition}")
        await writer.executescript(_ADMISSION_INDEXES)
        await writer.execute(_HEARTBEAT_TABLE)

    async def close(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        if self._point is not None:
            self._point.close()
        self._reader = self._writer = self._point = None
        self._file = None

    def _conns(self) -> tuple[aiosqlite.Connection, aiosqlite.Connection]:
        if self._writer is None or self._reader is None:
            raise DependencyUnavailable("store", "not open")
        return self._writer, self._reader

    async def ping(self) -> None:
        """Proves the store takes writes: one committed write to the one-row `store_heartbeat`
        table (a read, or a transaction begun and rolled back, succeeds on a file that cannot
        be written), through the checks every write makes."""
        async with self._transaction() as writer:
            await writer.execute(_HEARTBEAT, (datetime.now(UTC).isoformat(),))

    async def _writable(self) -> aiosqlite.Connection:
        """The writer, once the file it has open is still the one at the path; call it holding
        the write lock. A file removed under the store is never written again (what is
        written to an unlinked file is acknowledged, then lost); another file moved there (a
        restored copy) is opened in its place."""
        writer, _ = self._conns()
        try:
            found = _file_at(self._path)
        except OSError as exc:
            raise DependencyUnavailable("store", f"cannot look at {self._path}: {exc}") from exc
        if found == self._file:
            return writer
        if found is None:
            raise DependencyUnavailable(
                "store",
                f"{self._path} was removed while open: nothing is written until it is back "
                "(move it back, or restart the service to begin an empty one)",
            )
        old_writer, old_reader, old_point = self._writer, self._reader, self._point
        try:
            await self._connect_all()
        except (sqlite3.Error, OSError) as exc:
            raise DependencyUnavailable(
                "store", f"cannot open {self._path}, put there under the store: {exc}"
            ) from exc
        log.warning("store file replaced: reopened", path=str(self._path))
        for conn in (old_writer, old_reader):
            if conn is not None:
                with suppress(sqlite3.Error, ValueError):
                    await conn.close()
        if old_point is not None:
            old_point.close()
        return self._conns()[0]

    def _cannot_write(self, exc: sqlite3.Error) -> DependencyUnavailable:
        return DependencyUnavailable("store", f"cannot write {self._path}: {exc}")

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
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

    async def insert(
        self, queue: QueueState, idempotency_key: str | None, events: Sequence[QueueEvent] = ()
    ) -> tuple[QueueState, bool]:
        async with self._transaction() as writer:
            if idempotency_key is not None:
                rows: Any = await writer.execute_fetchall(
                    "SELECT q.doc FROM idempotency_key k JOIN queue_state q "
                    "ON q.id = k.queue_id WHERE k.key = ?",
                    (idempotency_key,),
                )
                if rows:
                    return _load(rows[0][0]), False  # commits a transaction that wrote nothing
                await writer.execute(
                    "INSERT INTO idempotency_key (key, queue_id) VALUES (?, ?)",
                    (idempotency_key, queue.id),
                )
            await writer.execute(_INSERT_QUEUE, _queue_row(queue))
            await _write_events(writer, queue.id, events)
        return queue, True

    async def get(self, queue_id: str) -> QueueState | None:
        doc = await self.get_json(queue_id)
        return _load(doc) if doc is not None else None

    async def update_many(
        self, changes: Mapping[str, Callable[[QueueState], list[QueueEvent] | None]]
    ) -> dict[str, QueueState | None]:
        ids = list(changes)
        result: dict[str, QueueState | None] = dict.fromkeys(ids)
        # One transaction for the whole batch: one commit instead of one per queue.
        async with self._transaction() as writer:
            rows: list[Any] = []
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows += await writer.execute_fetchall(
                    f"SELECT id, doc FROM queue_state WHERE id IN ({marks})", chunk
                )
            changed = []
            for queue_id, doc in rows:
                queue = _load(doc)
                events = changes[queue_id](queue)
                if events is not None:
                    changed.append((queue, events))
                result[queue_id] = queue
            await _write_changes(writer, changed)
        return result

    async def admit(
        self, limit: int | None, admit: Callable[[QueueState], list[QueueEvent]]
    ) -> list[QueueState]:
        marks = ",".join("?" * len(_RUNNING))
        # IMMEDIATE: no other replica writes between the count and the admission.
        async with self._transaction() as writer:
            rows: Any = await writer.execute_fetchall(
                f"SELECT parent, {_IS_PARENT} FROM queue_state WHERE status IN ({marks})",
                _RUNNING,
            )
            running = Counter(parent for parent, is_parent in rows if not is_parent)
            free = None if limit is None else limit - sum(running.values())
            changed: list[tuple[QueueState, list[QueueEvent]]] = []
            offset = 0
            while free is None or free > 0:
                page = free or _CHUNK
                rows = await writer.execute_fetchall(
                    "SELECT doc FROM queue_state WHERE status = ? "
                    "ORDER BY priority DESC, created, id LIMIT ? OFFSET ?",
                    (QueueStatus.QUEUED.value, page, offset),
                )
                offset += len(rows)
                for (doc,) in rows:
                    queue = _load(doc)
                    if queue.parent and queue.max_parallel is not None:
                        if running[queue.parent] >= queue.max_parallel:
                            continue  # its backfill runs its max_parallel children already
                        running[queue.parent] += 1
                    changed.append((queue, admit(queue)))
                    if free is not None:
                        free -= 1
                        if free == 0:
                            break
                if len(rows) < page:
                    break
            await _write_changes(writer, changed)
        return [queue for queue, _ in changed]

    async def update_parent(
        self,
        parent_id: str,
        mutate: Callable[[QueueState, list[QueueState]], list[QueueEvent] | None],
    ) -> QueueState | None:
        async with self._transaction() as writer:
            rows: Any = await writer.execute_fetchall(
                "SELECT doc FROM queue_state WHERE id = ?", (parent_id,)
            )
            if not rows:
                return None
            parent = _load(rows[0][0])
            children = await writer.execute_fetchall(
                "SELECT doc FROM queue_state WHERE parent = ?", (parent_id,)
            )
            events = mutate(parent, [_load(doc) for (doc,) in children])
            if events is not None:
                await _write_changes(writer, [(parent, events)])
        return parent

    async def claim(
        self,
        queue_id: str,
        targets: Collection[str],
        mutate: Callable[[QueueState, Mapping[str, int]], list[QueueEvent] | None],
    ) -> QueueState | None:
        async with self._transaction() as writer:
            running: Counter[str] = Counter()
            if targets:
                rows: Any = await writer.execute_fetchall(
                    "SELECT jobs FROM queue_state WHERE jobs != ''"
                )
                for (jobs,) in rows:
                    running.update(t for t in jobs.split() if t in targets)
            rows = await writer.execute_fetchall(
                "SELECT doc FROM queue_state WHERE id = ?", (queue_id,)
            )
            if not rows:
                return None
            queue = _load(rows[0][0])
            events = mutate(queue, running)
            if events is not None:
                await _write_changes(writer, [(queue, events)])
        return queue

    async def queued_order(self) -> list[str]:
        rows = await self._read(
            "SELECT id FROM queue_state WHERE status = ? ORDER BY priority DESC, created, id",
            (QueueStatus.QUEUED.value,),
        )
        return [str(row[0]) for row in rows]

    async def events(self, queue_id: str, *, after: int, limit: int) -> list[QueueEvent]:
        rows = await self._read(
            "SELECT doc FROM queue_events WHERE queue_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (queue_id, after, limit),
        )
        return [QueueEvent.model_validate_json(row[0]) for row in rows]

    async def get_json(self, queue_id: str) -> bytes | None:
        if self._point is None:
            raise DependencyUnavailable("store", "not open")
        try:
            row = self._point.execute(
                "SELECT doc FROM queue_state WHERE id = ?", (queue_id,)
            ).fetchone()
        except sqlite3.Error as exc:
            raise DependencyUnavailable("store", str(exc)) from exc
        return bytes(row[0]) if row else None

    async def page(
        self,
        *,
        status: QueueStatus | None,
        symbol: str | None,
        limit: int,
        cursor: str | None,
        parent: str | None = None,
    ) -> Page:
        where: list[str] = []
        args: list[Any] = []
        if parent is not None:
            where.append("parent = ?")
            args.append(parent)
        if status is not None:
            where.append("status = ?")
            args.append(status.value)
        if symbol is not None:
            where.append("symbol = ?")
            args.append(symbol)
        if cursor is not None:
            created, last_id = cursors.decode(cursor)
            where.append("(created, id) < (?, ?)")
            args += [created, last_id]
        sql = "SELECT doc, created, id FROM queue_state"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created DESC, id DESC LIMIT ?"
        rows = await self._read(sql, (*args, limit + 1))
        items = [_load(row[0]) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = cursors.encode(last[1], last[2])
        return Page(items=items, next_cursor=next_cursor)

    async def delete_ended(self, before: datetime, limit: int) -> list[str]:
        ended = [s.value for s in QueueStatus if s.terminal]
        marks = ",".join("?" * len(ended))
        cutoff = cursors.sort_key(before)
        async with self._transaction() as writer:
            # created <= finished_at: the created index narrows, the document decides.
            rows: Any = await writer.execute_fetchall(
                f"SELECT id FROM queue_state WHERE status IN ({marks}) AND created < ? "
                "AND json_extract(CAST(doc AS TEXT), '$.finished_at') < ? "
                "ORDER BY created LIMIT ?",
                (*ended, cutoff, cutoff, limit),
            )
            ids = [str(row[0]) for row in rows]
            if ids:
                id_marks = ",".join("?" * len(ids))
                for table, column in _PER_QUEUE:
                    await writer.execute(f"DELETE FROM {table} WHERE {column} IN ({id_marks})", ids)
        return ids

    async def list_active(self) -> list[QueueState]:
        marks = ",".join("?" for _ in ACTIVE_QUEUE_STATUSES)
        rows = await self._read(
            f"SELECT doc FROM queue_state WHERE status IN ({marks})",
            tuple(s.value for s in ACTIVE_QUEUE_STATUSES),
        )
        return [_load(row[0]) for row in rows]

    async def count_by_status(self) -> dict[str, int]:
        rows = await self._read("SELECT status, COUNT(*) FROM queue_state GROUP BY status", ())
        return {str(row[0]): int(row[1]) for row in rows}

    async def _read(self, sql: str, args: tuple[Any, ...]) -> Any:
        _, reader = self._conns()
        try:
            return list(await reader.execute_fetchall(sql, args))
        except sqlite3.Error as exc:
            raise DependencyUnavailable("store", str(exc)) from exc

    # -- schedules (ScheduleStore) --------------------------------------------------------

    async def put_schedule(self, schedule: Schedule) -> bool:
        added = await self._write(
            "INSERT INTO schedules (name, doc) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (schedule.name, schedule.model_dump_json().encode()),
        )
        return added == 1

    async def get_schedule(self, name: str) -> Schedule | None:
        rows = await self._read("SELECT doc FROM schedules WHERE name = ?", (name,))
        return Schedule.model_validate_json(rows[0][0]) if rows else None

    async def list_schedules(self) -> list[Schedule]:
        rows = await self._read("SELECT doc FROM schedules ORDER BY name", ())
        return [Schedule.model_validate_json(row[0]) for row in rows]

    async def update_schedule(
        self, name: str, mutate: Callable[[Schedule], None]
    ) -> Schedule | None:
        async with self._transaction() as writer:
            rows: Any = await writer.execute_fetchall(
                "SELECT doc FROM schedules WHERE name = ?", (name,)
            )
            if not rows:
                return None
            schedule = Schedule.model_validate_json(rows[0][0])
            mutate(schedule)
            await writer.execute(
                "UPDATE schedules SET doc = ? WHERE name = ?",
                (schedule.model_dump_json().encode(), name),
            )
        return schedule

    async def delete_schedule(self, name: str) -> bool:
        async with self._transaction() as writer:
            cursor = await writer.execute("DELETE FROM schedules WHERE name = ?", (name,))
            await writer.execute("DELETE FROM schedule_runs WHERE schedule = ?", (name,))
        return cursor.rowcount == 1

    async def claim_tick(
        self, run: ScheduleRun, queues: Sequence[tuple[QueueState, Sequence[QueueEvent]]]
    ) -> bool:
        async with self._transaction() as writer:
            cursor = await writer.execute(
                "INSERT INTO schedule_runs (schedule, scheduled_for, doc) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (run.schedule, cursors.sort_key(run.scheduled_for), run.model_dump_json().encode()),
            )
            if cursor.rowcount != 1:
                return False  # decided already: by another replica, or before a restart
            for queue, events in queues:
                await writer.execute(_INSERT_QUEUE, _queue_row(queue))
                await _write_events(writer, queue.id, events)
        return True

    async def last_ticks(self) -> dict[str, datetime]:
        rows = await self._read(
            "SELECT schedule, MAX(scheduled_for) FROM schedule_runs GROUP BY schedule", ()
        )
        return {str(name): _from_sort_key(key) for name, key in rows}

    async def schedule_runs(
        self, name: str, *, before: datetime | None, limit: int
    ) -> list[ScheduleRun]:
        upper = cursors.sort_key(before) if before is not None else "~"
        rows = await self._read(
            "SELECT doc FROM schedule_runs WHERE schedule = ? AND scheduled_for < ? "
            "ORDER BY scheduled_for DESC LIMIT ?",
            (name, upper, limit),
        )
        return [ScheduleRun.model_validate_json(row[0]) for row in rows]

    async def active_runs(self, name: str) -> list[QueueState]:
        marks = ",".join("?" for _ in ACTIVE_QUEUE_STATUSES)
        rows = await self._read(
            f"SELECT doc FROM queue_state WHERE status IN ({marks}) "
            "AND json_extract(CAST(doc AS TEXT), '$.schedule') = ?",
            (*(s.value for s in ACTIVE_QUEUE_STATUSES), name),
        )
        return [_load(row[0]) for row in rows]

    # -- API tokens (TokenStore) ----------------------------------------------------------

    async def _write(self, sql: str, args: tuple[Any, ...]) -> int:
        async with self._write_lock:
            writer = await self._writable()
            try:
                await _rollback(writer)
                cursor = await writer.execute(sql, args)
                return cursor.rowcount
            except sqlite3.Error as exc:
                raise self._cannot_write(exc) from exc

    async def put_token(self, token: ApiToken) -> bool:
        added = await self._write(
            "INSERT INTO api_tokens (name, role, sha256, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                token.name,
                token.role.value,
                token.sha256,
                token.created_at.isoformat(),
                token.expires_at.isoformat() if token.expires_at else None,
            ),
        )
        return added == 1

    async def token_by_hash(self, sha256: str) -> ApiToken | None:
        rows = await self._read(
            f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE sha256 = ?", (sha256,)
        )
        return _token(rows[0]) if rows else None

    async def list_tokens(self) -> list[ApiToken]:
        rows = await self._read(f"SELECT {_TOKEN_COLUMNS} FROM api_tokens ORDER BY name", ())
        return [_token(row) for row in rows]

    async def delete_token(self, name: str) -> bool:
        return await self._write("DELETE FROM api_tokens WHERE name = ?", (name,)) == 1

    async def touch_token(self, name: str, at: datetime) -> None:
        await self._write(
            "UPDATE api_tokens SET last_used_at = ? WHERE name = ?", (at.isoformat(), name)
        )

    # -- logged-out sessions (SessionStore) ---------------------------------------------

    async def end_session(self, session_id: str, until: datetime, now: datetime) -> None:
        async with self._transaction() as writer:
            await writer.execute(
                "INSERT INTO ended_sessions (id, until) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (session_id, until.timestamp()),
            )
            # Sessions past their own end are refused by their age: their records can go.
            await writer.execute("DELETE FROM ended_sessions WHERE until <= ?", (now.timestamp(),))

    async def ended_sessions(self, now: datetime) -> set[str]:
        rows = await self._read("SELECT id FROM ended_sessions WHERE until > ?", (now.timestamp(),))
        return {row[0] for row in rows}


_TOKEN_COLUMNS = "name, role, sha256, created_at, expires_at, last_used_at"


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


def _from_sort_key(key: str) -> datetime:
    return datetime.strptime(key, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _token(row: Any) -> ApiToken:
    def when(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    return ApiToken(
        name=row[0],
        role=Role(row[1]),
        sha256=row[2],
        created_at=datetime.fromisoformat(row[3]),
        expires_at=when(row[4]),
        last_used_at=when(row[5]),
    )
