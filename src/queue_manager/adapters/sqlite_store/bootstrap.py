"""What the SQLite store makes sure exists before it serves: its tables and indexes, on a new
file or on one made by an older release (columns added since are added in place). Safe when
several processes open the file at once: it is all one IMMEDIATE transaction, so a second process
finds the first one's tables and columns made (two adding one column would fail), and every
statement is `IF NOT EXISTS` besides."""

from __future__ import annotations

import aiosqlite

from queue_manager.adapters.sqlite_store.ledger_runs import build_all

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
CREATE TABLE IF NOT EXISTS rate_limits (
    grp TEXT PRIMARY KEY,
    doc BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS coverage_cells (
    type TEXT NOT NULL,
    symbol TEXT NOT NULL,
    day INTEGER NOT NULL,
    state TEXT NOT NULL,
    records INTEGER NOT NULL,
    first TEXT,
    last TEXT,
    queue_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (type, symbol, day)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS coverage_cells_state ON coverage_cells (type, state);
CREATE TABLE IF NOT EXISTS coverage_runs (
    type TEXT NOT NULL,
    symbol TEXT NOT NULL,
    start_day INTEGER NOT NULL,
    end_day INTEGER NOT NULL,
    state TEXT NOT NULL,
    records INTEGER NOT NULL,
    first TEXT,
    last TEXT,
    queue_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    PRIMARY KEY (type, symbol, start_day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS coverage_sources (
    queue_id TEXT PRIMARY KEY,
    fp TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS expected_gaps (
    name TEXT PRIMARY KEY,
    doc BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS coverage_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS collections (
    name TEXT PRIMARY KEY,
    doc BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS collection_reads (
    name TEXT NOT NULL,
    queue_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    at TEXT NOT NULL,
    doc BLOB NOT NULL,
    PRIMARY KEY (name, queue_id, step)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS collection_reads_newest ON collection_reads (name, at DESC);
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


async def create_schema(writer: aiosqlite.Connection) -> None:
    await writer.execute("BEGIN IMMEDIATE")
    try:
        for statement in _statements(SCHEMA):
            await writer.execute(statement)
        have = {row[1] for row in await writer.execute_fetchall("PRAGMA table_info(queue_state)")}
        for column, definition in _ADDED_COLUMNS.items():
            if column not in have:
                await writer.execute(f"ALTER TABLE queue_state ADD COLUMN {column} {definition}")
        for statement in [*_statements(_ADMISSION_INDEXES), _HEARTBEAT_TABLE]:
            await writer.execute(statement)
        # cells without their runs: a file of a release before them (or seeded by a bench)
        await build_all(writer)
        await writer.execute("COMMIT")
    except BaseException:
        if writer.in_transaction:
            await writer.execute("ROLLBACK")
        raise


def _statements(script: str) -> list[str]:
    """The statements of a script of ours (none has a `;` inside it)."""
    return [part.strip() for part in script.split(";") if part.strip()]
