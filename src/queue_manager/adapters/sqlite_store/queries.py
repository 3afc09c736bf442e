"""Every SQL statement the SQLite store runs but the schema (`bootstrap`). Values always travel
as `?` parameters; the few texts assembled here (a list of `?`, a list page's filters) are
assembled from fixed fragments, never from a value."""

from __future__ import annotations

from typing import Final

from queue_manager.domain.models import ACTIVE_QUEUE_STATUSES, QueueStatus

# SQLite's default limit on bound parameters is far above this; it keeps statements small.
CHUNK: Final = 500


def marks(n: int) -> str:
    """`?,?,…` for `n` values."""
    return ",".join("?" * n)


# -- queues ------------------------------------------------------------------------------------
INSERT_QUEUE: Final = (
    "INSERT INTO queue_state (id, status, symbol, created, version, doc, priority, jobs, parent) "
    "VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?)"
)
UPDATE_QUEUE: Final = (
    "UPDATE queue_state SET status = ?, version = version + 1, doc = ?, priority = ?, "
    "jobs = ? WHERE id = ?"
)
QUEUE_DOC: Final = "SELECT doc FROM queue_state WHERE id = ?"
QUEUE_BY_KEY: Final = (
    "SELECT q.doc FROM idempotency_key k JOIN queue_state q ON q.id = k.queue_id WHERE k.key = ?"
)
INSERT_KEY: Final = "INSERT INTO idempotency_key (key, queue_id) VALUES (?, ?)"
# A (queue, seq) written twice would be a bug in the numbering: fail loudly, never overwrite.
INSERT_EVENT: Final = "INSERT INTO queue_events (queue_id, seq, doc) VALUES (?, ?, ?)"
EVENTS_OF: Final = (
    "SELECT doc FROM queue_events WHERE queue_id = ? AND seq > ? ORDER BY seq LIMIT ?"
)
COUNT_BY_STATUS: Final = "SELECT status, COUNT(*) FROM queue_state GROUP BY status"

# -- the overview (domain/overview.py): the window's rows through the `created` index ----------
# A backfill's parent is the one queue other rows name as their `parent` (the parent index).
_NOT_PARENT: Final = (
    "NOT EXISTS (SELECT 1 FROM queue_state c WHERE c.parent = q.id AND c.parent != '')"
)
RUNS_BY_HOUR: Final = (
    "SELECT substr(q.created, 1, 13) AS hour, q.status, COUNT(*) FROM queue_state q "
    f"WHERE q.created >= ? AND {_NOT_PARENT} GROUP BY hour, q.status"
)
RUNS_BY_SYMBOL: Final = (
    "SELECT q.symbol, COUNT(*), SUM(q.status = 'error') FROM queue_state q "
    f"WHERE q.created >= ? AND q.status IN ('finished', 'error') AND {_NOT_PARENT} "
    "GROUP BY q.symbol"
)
# The document is JSON text held as a BLOB: cast, so SQLite's JSON functions read it.
STEPS_BY_TARGET: Final = (
    "SELECT json_extract(s.value, '$.target') AS target, COUNT(*), "
    "SUM(json_extract(s.value, '$.status') = 'error') "
    "FROM queue_state q, json_each(CAST(q.doc AS TEXT), '$.steps') s "
    "WHERE q.created >= ? AND q.status IN ('finished', 'error', 'stopped') "
    "AND json_extract(s.value, '$.status') IN ('finished', 'error') GROUP BY target"
)
ACTIVE_MARKS: Final = marks(len(ACTIVE_QUEUE_STATUSES))
LIST_ACTIVE: Final = f"SELECT doc FROM queue_state WHERE status IN ({ACTIVE_MARKS})"


def docs_of(n: int) -> str:
    return f"SELECT id, doc FROM queue_state WHERE id IN ({marks(n)})"


def prefix_range(prefix: str) -> tuple[str, str]:
    """[low, high) holding exactly the strings that start with `prefix`: high is the prefix
    with its last character's successor. `prefix` is ASCII (the API takes letters, digits and
    '-'), so the successor is a character too."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def page(
    *,
    parent: bool,
    status: bool,
    symbol: bool,
    after: bool,
    id_prefix: bool = False,
    top_level: bool = False,
    created_from: bool = False,
    created_to: bool = False,
) -> str:
    """A list page, newest first; its parameters in this order, then the limit.

    An id prefix is the primary key's range [prefix, its successor): exact under SQLite's
    binary comparison, and read from the index. A top-level queue has the parent '' (the parent
    index leaves those out: the created index is read, filtered); the created range narrows the
    created index."""
    where = [
        text
        for wanted, text in (
            (id_prefix, "id >= ? AND id < ?"),
            (parent, "parent = ?"),
            (top_level, "parent = ''"),
            (status, "status = ?"),
            (symbol, "symbol = ?"),
            (created_from, "created >= ?"),
            (created_to, "created < ?"),
            (after, "(created, id) < (?, ?)"),
        )
        if wanted
    ]
    sql = "SELECT doc, created, id FROM queue_state"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + " ORDER BY created DESC, id DESC LIMIT ?"


#: terminal statuses, the cutoff (created), the cutoff (finished_at), the limit
_ENDED = tuple(s for s in QueueStatus if s.terminal)
ENDED_BEFORE: Final = (
    # created <= finished_at: the created index narrows, the document decides.
    f"SELECT id FROM queue_state WHERE status IN ({marks(len(_ENDED))}) AND created < ? "
    "AND json_extract(CAST(doc AS TEXT), '$.finished_at') < ? ORDER BY created LIMIT ?"
)
ENDED_STATUSES: Final = tuple(s.value for s in _ENDED)
#: what retention deletes with a queue: its keys, its history, then the queue itself
PER_QUEUE: Final = (
    ("idempotency_key", "queue_id"),
    ("queue_events", "queue_id"),
    ("queue_state", "id"),
)


def delete_of(table: str, column: str, n: int) -> str:
    return f"DELETE FROM {table} WHERE {column} IN ({marks(n)})"


HEARTBEAT: Final = (
    "INSERT INTO store_heartbeat (id, n, at) VALUES (1, 1, ?) "
    "ON CONFLICT (id) DO UPDATE SET n = n + 1, at = excluded.at"
)

# -- admission ---------------------------------------------------------------------------------
#: a backfill's parent runs nothing itself: admission never counts it
_IS_PARENT = "json_extract(CAST(doc AS TEXT), '$.backfill') IS NOT NULL"


def running_by_parent(n: int) -> str:
    """(parent, is a backfill's parent) of the queues in `n` running statuses."""
    return f"SELECT parent, {_IS_PARENT} FROM queue_state WHERE status IN ({marks(n)})"


# Admission order: priority, then oldest, then id. Nothing is written before the round ends,
# so an OFFSET walks the same line.
QUEUED_PAGE: Final = (
    "SELECT doc FROM queue_state WHERE status = ? "
    "ORDER BY priority DESC, created, id LIMIT ? OFFSET ?"
)
QUEUED_ORDER: Final = (
    "SELECT id FROM queue_state WHERE status = ? ORDER BY priority DESC, created, id"
)
RUNNING_JOBS: Final = "SELECT jobs FROM queue_state WHERE jobs != ''"
CHILDREN: Final = "SELECT doc FROM queue_state WHERE parent = ?"

# -- schedules ---------------------------------------------------------------------------------
SCHEDULE_INSERT: Final = "INSERT INTO schedules (name, doc) VALUES (?, ?) ON CONFLICT DO NOTHING"
SCHEDULE: Final = "SELECT doc FROM schedules WHERE name = ?"
SCHEDULES: Final = "SELECT doc FROM schedules ORDER BY name"
SCHEDULE_UPDATE: Final = "UPDATE schedules SET doc = ? WHERE name = ?"
SCHEDULE_DELETE: Final = "DELETE FROM schedules WHERE name = ?"
RUNS_DELETE: Final = "DELETE FROM schedule_runs WHERE schedule = ?"
RUN_INSERT: Final = (
    "INSERT INTO schedule_runs (schedule, scheduled_for, doc) VALUES (?, ?, ?) "
    "ON CONFLICT DO NOTHING"
)
LAST_TICKS: Final = "SELECT schedule, MAX(scheduled_for) FROM schedule_runs GROUP BY schedule"
# Newest first; a next page has an upper bound, the first none (no sentinel value).
RUNS_OF: Final = (
    "SELECT doc FROM schedule_runs WHERE schedule = ? ORDER BY scheduled_for DESC LIMIT ?"
)
RUNS_BEFORE: Final = (
    "SELECT doc FROM schedule_runs WHERE schedule = ? AND scheduled_for < ? "
    "ORDER BY scheduled_for DESC LIMIT ?"
)
ACTIVE_RUNS: Final = (
    f"SELECT doc FROM queue_state WHERE status IN ({ACTIVE_MARKS}) "
    "AND json_extract(CAST(doc AS TEXT), '$.schedule') = ?"
)

# -- rate-limit breakers -----------------------------------------------------------------------
BREAKERS: Final = "SELECT doc FROM rate_limits ORDER BY grp"
BREAKER: Final = "SELECT doc FROM rate_limits WHERE grp = ?"
BREAKER_PUT: Final = (
    "INSERT INTO rate_limits (grp, doc) VALUES (?, ?) "
    "ON CONFLICT (grp) DO UPDATE SET doc = excluded.doc"
)

# -- API tokens and logged-out sessions --------------------------------------------------------
_TOKEN_COLUMNS = "name, role, sha256, created_at, expires_at, last_used_at"
TOKEN_INSERT: Final = (
    "INSERT INTO api_tokens (name, role, sha256, created_at, expires_at) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
TOKEN_BY_HASH: Final = f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE sha256 = ?"
# BINARY collation: code-point order, as the ArangoDB store sorts its tokens.
TOKENS: Final = f"SELECT {_TOKEN_COLUMNS} FROM api_tokens ORDER BY name"
TOKEN_DELETE: Final = "DELETE FROM api_tokens WHERE name = ?"
TOKEN_TOUCH: Final = "UPDATE api_tokens SET last_used_at = ? WHERE name = ?"
SESSION_END: Final = "INSERT INTO ended_sessions (id, until) VALUES (?, ?) ON CONFLICT DO NOTHING"
SESSIONS_PURGE: Final = "DELETE FROM ended_sessions WHERE until <= ?"
SESSIONS_ENDED: Final = "SELECT id FROM ended_sessions WHERE until > ?"

# -- the catalog of collections ----------------------------------------------------------------
COLLECTION_PUT: Final = (
    "INSERT INTO collections (name, doc) VALUES (?, ?) "
    "ON CONFLICT (name) DO UPDATE SET doc = excluded.doc"
)
COLLECTION: Final = "SELECT doc FROM collections WHERE name = ?"
COLLECTIONS_AFTER: Final = "SELECT doc FROM collections WHERE name > ? ORDER BY name LIMIT ?"
#: [prefix, its successor) as `prefix_range` makes it, then the name to start after
COLLECTIONS_PREFIXED: Final = (
    "SELECT doc FROM collections WHERE name >= ? AND name < ? AND name > ? ORDER BY name LIMIT ?"
)
COLLECTION_NAMES: Final = "SELECT name FROM collections ORDER BY name LIMIT ?"
COLLECTION_READ_PUT: Final = (
    "INSERT INTO collection_reads (name, queue_id, step, at, doc) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (name, queue_id, step) DO UPDATE SET at = excluded.at, doc = excluded.doc"
)
COLLECTION_READS: Final = (
    "SELECT doc FROM collection_reads WHERE name = ? ORDER BY at DESC, queue_id, step LIMIT ?"
)


def collections_named(n: int) -> str:
    return f"SELECT name, doc FROM collections WHERE name IN ({marks(n)})"
