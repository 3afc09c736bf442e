"""Every AQL text the ArangoDB store runs, and what it binds (docs/operations.md).

Each query is a module constant; values always travel as bind parameters and collections as
`@@` parameters (tests/store/test_aql_bind_parameters.py scans these constants). The list
queries are assembled here, once at import, from fixed fragments chosen by booleans (one per
filter, `PAGE_FILTERS`) — never from a value — so a request can pick a query but never change
its text.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from queue_manager.domain.models import QueueStatus

QUEUE_COLLECTION: Final = "queue_state"
KEYS_COLLECTION: Final = "queue_idempotency"
TOKENS_COLLECTION: Final = "api_tokens"
#: one document per token hash, `_key` = the SHA-256, `name` = its token's: the key makes a hash
#: unique (a cluster refuses unique indexes on attributes that are not the shard key)
TOKEN_HASHES_COLLECTION: Final = "api_token_hashes"
#: one document per history event, `_key` = `<queue_id>:<seq>`: the key makes (queue, seq) unique
EVENTS_COLLECTION: Final = "queue_events"
#: the store's own documents: the locks `admission`, written first by every admission and claim
#: so that they run one at a time, and `parent:<id>`, written first by every recount of that
#: backfill's parent; the readiness `heartbeat`; the `schema` version (bootstrap)
LOCKS_COLLECTION: Final = "queue_locks"
#: one document per schedule, `_key` = its name
SCHEDULES_COLLECTION: Final = "queue_schedules"
#: one document per decided tick, `_key` = SHA-256 of (schedule, tick): the key makes a
#: decision unique
RUNS_COLLECTION: Final = "queue_schedule_runs"
#: one document per logged-out browser session, `_key` = the session id, `until` = when it
#: would have ended by itself (epoch seconds)
ENDED_SESSIONS_COLLECTION: Final = "ended_sessions"
#: one document per rate-limit group's breaker, `_key` = the group's name
RATE_LIMITS_COLLECTION: Final = "queue_rate_limits"
#: one document per collection a step wrote, `_key` = its name (names are valid keys)
CATALOG_COLLECTION: Final = "queue_catalog"
#: one document per (collection, consuming step), `_key` = `<name>:<queue_id>:<step>`
CATALOG_READS_COLLECTION: Final = "queue_catalog_reads"

#: the coverage ledger's cells, `_key` = `<type>:<symbol>:<day ordinal>` (docs/coverage.md)
COVERAGE_COLLECTION: Final = "queue_coverage"
#: the ledger's bookkeeping: each queue's fingerprint (`src:<queue id>`), the derived marker,
#: and the expected-gap calendar set over the API (`gap:<name>`)
COVERAGE_META_COLLECTION: Final = "queue_coverage_meta"

#: every collection, in the order bootstrap creates them
COLLECTIONS: Final = (
    QUEUE_COLLECTION,
    KEYS_COLLECTION,
    TOKENS_COLLECTION,
    EVENTS_COLLECTION,
    LOCKS_COLLECTION,
    SCHEDULES_COLLECTION,
    RUNS_COLLECTION,
    ENDED_SESSIONS_COLLECTION,
    TOKEN_HASHES_COLLECTION,
    RATE_LIMITS_COLLECTION,
    CATALOG_COLLECTION,
    CATALOG_READS_COLLECTION,
    COVERAGE_COLLECTION,
    COVERAGE_META_COLLECTION,
)


@dataclass(frozen=True)
class Index:
    """A persistent index. None is unique: uniqueness comes from `_key`, the shard key, so the
    same schema runs on a single server and on a cluster."""

    collection: str
    name: str
    fields: tuple[str, ...]
    sparse: bool = False


INDEXES: Final = (
    # Each serves one list filter plus the newest-first sort.
    Index(QUEUE_COLLECTION, "queue_state_created", ("created", "_key")),
    Index(QUEUE_COLLECTION, "queue_state_status", ("status", "created", "_key")),
    Index(QUEUE_COLLECTION, "queue_state_symbol", ("symbol", "created", "_key")),
    Index(QUEUE_COLLECTION, "queue_state_admission", ("status", "priority", "created", "_key")),
    # a backfill's children: its list page and its parent's recount
    Index(QUEUE_COLLECTION, "queue_state_parent", ("parent", "created", "_key")),
    # the queues running a job now (`jobs` is null otherwise): what MAX_RUNNING_JOBS counts
    Index(QUEUE_COLLECTION, "queue_state_jobs", ("jobs",), sparse=True),
    # Retention removes a queue's idempotency keys by queue id.
    Index(KEYS_COLLECTION, "queue_idempotency_queue", ("queue_id",)),
    # A queue's history in order (the key makes an event unique).
    Index(EVENTS_COLLECTION, "queue_events_by_queue", ("queue_id", "seq")),
    # A schedule's decided ticks, newest first; the latest per schedule.
    Index(RUNS_COLLECTION, "queue_schedule_runs_by_schedule", ("schedule", "scheduled_for")),
    # A token by its hash: one probe (the hash's own document keeps it unique).
    Index(TOKENS_COLLECTION, "api_tokens_by_hash", ("sha256",)),
    # Logged-out sessions are listed, and purged, by when they would have ended.
    Index(ENDED_SESSIONS_COLLECTION, "ended_sessions_until", ("until",)),
    # A collection's consumers, newest first.
    Index(CATALOG_READS_COLLECTION, "queue_catalog_reads_newest", ("name", "at")),
    # The ledger's cells of symbols x one type x a day range; its counts by state.
    Index(COVERAGE_COLLECTION, "queue_coverage_cells", ("type", "symbol", "day")),
    Index(COVERAGE_COLLECTION, "queue_coverage_state", ("type", "state")),
)
#: the unique indexes of schema 1, which a cluster refuses: (collection, index name)
UNIQUE_INDEXES_OF_SCHEMA_1: Final = (
    (EVENTS_COLLECTION, "queue_events_seq"),
    (RUNS_COLLECTION, "queue_schedule_runs_tick"),
    (TOKENS_COLLECTION, "api_tokens_sha256"),
)

# -- list pages: keyset pagination ------------------------------------------------------------
_SCAN: Final = "FOR d IN @@coll"
_BY_STATUS: Final = "  FILTER d.status == @status"
_BY_SYMBOL: Final = "  FILTER d.symbol == @symbol"
_BY_PARENT: Final = "  FILTER d.parent == @parent"
_BY_ID_PREFIX: Final = "  FILTER STARTS_WITH(d._key, @id_prefix)"
_TOP_LEVEL: Final = "  FILTER d.parent == null"
_CREATED_FROM: Final = "  FILTER d.created >= @created_from"
_CREATED_TO: Final = "  FILTER d.created < @created_to"
# `created <= @created` is the index range; the second condition drops the rows of the same
# instant already returned (ties broken by `_key`), so no OFFSET is needed.
_AFTER_CURSOR: Final = (
    "  FILTER d.created <= @created\n  FILTER d.created < @created OR d._key < @key"
)
_NEWEST_FIRST: Final = "  SORT d.created DESC, d._key DESC\n  LIMIT @limit\n  RETURN d"

#: a list page's optional filters, in the order its query applies them
PAGE_FILTERS: Final = (
    "id_prefix",
    "parent",
    "top_level",
    "status",
    "symbol",
    "created_from",
    "created_to",
    "after",
)
_FILTER_TEXT: Final[Mapping[str, str]] = {
    "id_prefix": _BY_ID_PREFIX,
    "parent": _BY_PARENT,
    "top_level": _TOP_LEVEL,
    "status": _BY_STATUS,
    "symbol": _BY_SYMBOL,
    "created_from": _CREATED_FROM,
    "created_to": _CREATED_TO,
    "after": _AFTER_CURSOR,
}


def _page_query(wanted: tuple[bool, ...]) -> str:
    parts = [_SCAN]
    parts += [_FILTER_TEXT[name] for name, on in zip(PAGE_FILTERS, wanted, strict=True) if on]
    parts.append(_NEWEST_FIRST)
    return "\n".join(parts)


#: which of PAGE_FILTERS are on -> query (every combination, built once from fixed text)
PAGE_QUERIES: Final[Mapping[tuple[bool, ...], str]] = {
    wanted: _page_query(wanted) for wanted in itertools.product((False, True), repeat=8)
}


def page(
    *,
    status: str | None,
    symbol: str | None,
    limit: int,
    after: tuple[str, str] | None,
    parent: str | None = None,
    id_prefix: str | None = None,
    top_level: bool = False,
    created_from: str | None = None,
    created_to: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """The list query and its bind parameters; `after` is the last row's (created, _key),
    `created_from`/`created_to` are sort keys."""
    bind: dict[str, Any] = {"@coll": QUEUE_COLLECTION, "limit": limit}
    values = {
        "status": status,
        "symbol": symbol,
        "parent": parent,
        "id_prefix": id_prefix,
        "created_from": created_from,
        "created_to": created_to,
    }
    bind.update({name: value for name, value in values.items() if value is not None})
    if after is not None:
        bind["created"], bind["key"] = after
    on = {name: value is not None for name, value in values.items()}
    on["top_level"] = top_level
    on["after"] = after is not None
    query = PAGE_QUERIES[tuple(on[name] for name in PAGE_FILTERS)]
    return query, bind


# -- the rest ---------------------------------------------------------------------------------
LIST_ACTIVE: Final = """
FOR d IN @@coll
  FILTER d.status IN @statuses
  RETURN d
"""
COUNT_BY_STATUS: Final = """
FOR d IN @@coll
  COLLECT status = d.status WITH COUNT INTO n
  RETURN [status, n]
"""
# The readiness probe proves the database takes writes: it rewrites one document.
HEARTBEAT: Final = """
UPSERT { _key: @key }
  INSERT { _key: @key, n: 1, at: DATE_ISO8601(DATE_NOW()) }
  UPDATE { n: OLD.n + 1, at: DATE_ISO8601(DATE_NOW()) }
  IN @@coll
"""
#: the heartbeat's document in LOCKS_COLLECTION
HEARTBEAT_KEY: Final = "heartbeat"

# -- retention: the four run in one stream transaction --------------------------------------
# Ended queues past retention, oldest first; `created <= finished_at`, so the created range
# narrows the scan and the finish time decides.
DELETE_ENDED: Final = """
FOR d IN @@coll
  FILTER d.status IN @statuses AND d.created < @created
  SORT d.created
  FILTER d.finished_at != null AND DATE_TIMESTAMP(d.finished_at) < @before
  LIMIT @limit
  REMOVE d IN @@coll
  RETURN OLD._key
"""
DELETE_KEYS_OF: Final = """
FOR d IN @@coll
  FILTER d.queue_id IN @ids
  REMOVE d IN @@coll
"""
DELETE_LOCKS: Final = """
FOR d IN @@coll
  FILTER d._key IN @keys
  REMOVE d IN @@coll
"""
#: what retention writes
RETENTION_COLLECTIONS: Final = (
    QUEUE_COLLECTION,
    KEYS_COLLECTION,
    EVENTS_COLLECTION,
    LOCKS_COLLECTION,
)


# -- history -----------------------------------------------------------------------------------
# Each event carries its `_key` (`<queue_id>:<seq>`): an event written twice fails loudly.
EVENTS_INSERT: Final = "FOR d IN @events INSERT d INTO @@coll"
EVENTS_OF: Final = """
FOR d IN @@coll
  FILTER d.queue_id == @queue_id AND d.seq > @after
  SORT d.queue_id, d.seq
  LIMIT @limit
  RETURN UNSET(d, @hidden)
"""
DELETE_EVENTS_OF: Final = """
FOR d IN @@coll
  FILTER d.queue_id IN @ids
  REMOVE d IN @@coll
"""


def events_insert(events: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """`events`: documents of `documents.event_documents`."""
    return EVENTS_INSERT, {"@coll": EVENTS_COLLECTION, "events": events}


def events_of(queue_id: str, after: int, limit: int) -> tuple[str, dict[str, Any]]:
    bind = {"@coll": EVENTS_COLLECTION, "queue_id": queue_id, "after": after, "limit": limit}
    return EVENTS_OF, {**bind, "hidden": ["_key", "_id", "_rev", "queue_id"]}


def delete_events_of(ids: list[str]) -> tuple[str, dict[str, Any]]:
    return DELETE_EVENTS_OF, {"@coll": EVENTS_COLLECTION, "ids": ids}


def list_active(statuses: list[str]) -> tuple[str, dict[str, Any]]:
    return LIST_ACTIVE, {"@coll": QUEUE_COLLECTION, "statuses": statuses}


def delete_ended(
    statuses: list[str], created: str, before_ms: int, limit: int
) -> tuple[str, dict[str, Any]]:
    bind = {"@coll": QUEUE_COLLECTION, "statuses": statuses, "created": created}
    return DELETE_ENDED, {**bind, "before": before_ms, "limit": limit}


def delete_keys_of(ids: list[str]) -> tuple[str, dict[str, Any]]:
    return DELETE_KEYS_OF, {"@coll": KEYS_COLLECTION, "ids": ids}


def count_by_status() -> tuple[str, dict[str, Any]]:
    return COUNT_BY_STATUS, {"@coll": QUEUE_COLLECTION}


# -- the overview (domain/overview.py): the window's documents through the `created` index -----
# A backfill's parent is the one document with a `backfill`; its children are the runs.
RUNS_BY_HOUR: Final = """
FOR d IN @@coll
  FILTER d.created >= @since AND d.backfill == null
  COLLECT hour = SUBSTRING(d.created, 0, 13), status = d.status WITH COUNT INTO n
  RETURN [hour, status, n]
"""
RUNS_BY_SYMBOL: Final = """
FOR d IN @@coll
  FILTER d.created >= @since AND d.status IN @outcomes AND d.backfill == null
  COLLECT symbol = d.symbol AGGREGATE ended = COUNT(1), failed = SUM(d.status == @failed ? 1 : 0)
  RETURN [symbol, ended, failed]
"""
# (the steps array in parentheses: an expression, which no reader takes for a collection's name)
STEPS_BY_TARGET: Final = """
FOR d IN @@coll
  FILTER d.created >= @since AND d.status IN @ended
  FOR s IN (d.steps)
    FILTER s.status IN @outcomes
    COLLECT target = s.target AGGREGATE ended = COUNT(1), failed = SUM(s.status == @failed ? 1 : 0)
    RETURN [target, ended, failed]
"""
#: what ran to an outcome (finished or failed; stopped counts in neither), and the failure
_OUTCOMES: Final = [QueueStatus.FINISHED.value, QueueStatus.ERROR.value]


def runs_by_hour(since: str) -> tuple[str, dict[str, Any]]:
    return RUNS_BY_HOUR, {"@coll": QUEUE_COLLECTION, "since": since}


def runs_by_symbol(since: str) -> tuple[str, dict[str, Any]]:
    bind = {"outcomes": _OUTCOMES, "failed": QueueStatus.ERROR.value}
    return RUNS_BY_SYMBOL, {"@coll": QUEUE_COLLECTION, "since": since, **bind}


def steps_by_target(since: str) -> tuple[str, dict[str, Any]]:
    ended = [s.value for s in QueueStatus if s.terminal]
    bind = {"ended": ended, "outcomes": _OUTCOMES, "failed": QueueStatus.ERROR.value}
    return STEPS_BY_TARGET, {"@coll": QUEUE_COLLECTION, "since": since, **bind}


def delete_parent_locks(ids: list[str]) -> tuple[str, dict[str, Any]]:
    """The recount locks of pruned queues (only a backfill's parent has one)."""
    return DELETE_LOCKS, {"@coll": LOCKS_COLLECTION, "keys": [_parent_lock_key(i) for i in ids]}


# -- admission (MAX_RUNNING_QUEUES, MAX_RUNNING_JOBS) ------------------------------------------
# Two transactions writing this document conflict: the second is retried after the first.
ADMISSION_LOCK: Final = """
UPSERT { _key: @key } INSERT { _key: @key, n: 1 } UPDATE { n: OLD.n + 1 } IN @@coll
"""
#: the lock document every admission and claim writes first (bootstrap creates it)
ADMISSION_LOCK_KEY: Final = "admission"
# Running queues per backfill (null: not a backfill's child). A backfill's parent runs no job
# itself: it takes no slot.
RUNNING_BY_PARENT: Final = """
FOR d IN @@coll
  FILTER d.status IN @running AND d.backfill == null
  COLLECT parent = d.parent WITH COUNT INTO n
  RETURN [parent, n]
"""
# Admission order: priority, then oldest; `_key` breaks ties the same way everywhere. `@busy`
# (backfill -> its children running) passes over the children of a backfill that runs its
# `max_parallel` already; the store checks again as it admits. A next page starts past the
# last row read (keyset, same order): the queues admitted meanwhile leave the `queued` rows,
# so an OFFSET would skip some.
QUEUED_NEXT: Final = """
FOR d IN @@coll
  FILTER d.status == @queued
  FILTER d.parent == null OR d.max_parallel == null
    OR TRANSLATE(d.parent, @busy, 0) < d.max_parallel
  SORT d.priority DESC, d.created, d._key
  LIMIT @limit
  RETURN d
"""
QUEUED_AFTER: Final = """
FOR d IN @@coll
  FILTER d.status == @queued
  FILTER d.priority < @priority OR (d.priority == @priority
    AND (d.created > @created OR (d.created == @created AND d._key > @key)))
  FILTER d.parent == null OR d.max_parallel == null
    OR TRANSLATE(d.parent, @busy, 0) < d.max_parallel
  SORT d.priority DESC, d.created, d._key
  LIMIT @limit
  RETURN d
"""
# A backfill's children, read with their parent in the recount's transaction.
CHILDREN: Final = """
FOR d IN @@coll
  FILTER d.parent == @parent
  SORT d.parent, d.created, d._key
  RETURN d
"""
QUEUED_ORDER: Final = """
FOR d IN @@coll
  FILTER d.status == @queued
  SORT d.priority DESC, d.created, d._key
  RETURN d._key
"""
# `jobs` (the targets of the running steps, null when none) is kept on every write, whatever
# the queue's status: a queue already `error` may still have a step started.
RUNNING_JOBS: Final = """
FOR d IN @@coll
  FILTER d.jobs != null
  RETURN d.jobs
"""


def heartbeat() -> tuple[str, dict[str, Any]]:
    return HEARTBEAT, {"@coll": LOCKS_COLLECTION, "key": HEARTBEAT_KEY}


def admission_lock() -> tuple[str, dict[str, Any]]:
    return ADMISSION_LOCK, {"@coll": LOCKS_COLLECTION, "key": ADMISSION_LOCK_KEY}


def parent_lock(parent_id: str) -> tuple[str, dict[str, Any]]:
    """The lock document of one backfill's recounts."""
    return ADMISSION_LOCK, {"@coll": LOCKS_COLLECTION, "key": _parent_lock_key(parent_id)}


def _parent_lock_key(parent_id: str) -> str:
    return "parent:" + parent_id


def running_by_parent(running: list[str]) -> tuple[str, dict[str, Any]]:
    return RUNNING_BY_PARENT, {"@coll": QUEUE_COLLECTION, "running": running}


def queued_next(
    queued: str, limit: int, busy: Mapping[str, int], after: tuple[Any, str, str] | None = None
) -> tuple[str, dict[str, Any]]:
    """The next queued queues in admission order; `after`: the last row read, as
    (priority, created, _key)."""
    bind: dict[str, Any] = {
        "@coll": QUEUE_COLLECTION,
        "queued": queued,
        "limit": limit,
        "busy": dict(busy),
    }
    if after is None:
        return QUEUED_NEXT, bind
    bind["priority"], bind["created"], bind["key"] = after
    return QUEUED_AFTER, bind


def children(parent: str) -> tuple[str, dict[str, Any]]:
    return CHILDREN, {"@coll": QUEUE_COLLECTION, "parent": parent}


def queued_order(queued: str) -> tuple[str, dict[str, Any]]:
    return QUEUED_ORDER, {"@coll": QUEUE_COLLECTION, "queued": queued}


def running_jobs() -> tuple[str, dict[str, Any]]:
    return RUNNING_JOBS, {"@coll": QUEUE_COLLECTION}


# -- API tokens --------------------------------------------------------------------------------
# A token is two documents written together (tokens.py): itself, keyed by name, and its hash's,
# keyed by the hash; either key taken refuses the token.
TOKEN_BY_HASH: Final = "FOR d IN @@coll FILTER d.sha256 == @sha256 LIMIT 1 RETURN d"
# Sorted by the store (code-point order, as SQLite's BINARY collation): AQL would sort with
# the server's ICU collation, which orders `_` before digits and `a` before `B`.
TOKENS: Final = "FOR d IN @@coll RETURN d"
TOKEN_DELETE: Final = (
    "REMOVE { _key: @name } IN @@coll OPTIONS { ignoreErrors: true } RETURN OLD.sha256"
)
TOKEN_HASH_DELETE: Final = "REMOVE { _key: @sha256 } IN @@coll OPTIONS { ignoreErrors: true }"
TOKEN_TOUCH: Final = (
    "UPDATE { _key: @name } WITH { last_used_at: @at } IN @@coll OPTIONS { ignoreErrors: true }"
)
#: what writing a token writes
TOKEN_COLLECTIONS: Final = (TOKENS_COLLECTION, TOKEN_HASHES_COLLECTION)
SESSION_END: Final = "INSERT @doc INTO @@coll OPTIONS { ignoreErrors: true }"
SESSIONS_ENDED: Final = "FOR d IN @@coll FILTER d.until > @now RETURN d._key"
SESSIONS_PURGE: Final = (
    "FOR d IN @@coll FILTER d.until <= @now REMOVE d IN @@coll OPTIONS { ignoreErrors: true }"
)


def token_by_hash(sha256: str) -> tuple[str, dict[str, Any]]:
    return TOKEN_BY_HASH, {"@coll": TOKENS_COLLECTION, "sha256": sha256}


def tokens() -> tuple[str, dict[str, Any]]:
    return TOKENS, {"@coll": TOKENS_COLLECTION}


def token_delete(name: str) -> tuple[str, dict[str, Any]]:
    return TOKEN_DELETE, {"@coll": TOKENS_COLLECTION, "name": name}


def token_hash_delete(sha256: str) -> tuple[str, dict[str, Any]]:
    return TOKEN_HASH_DELETE, {"@coll": TOKEN_HASHES_COLLECTION, "sha256": sha256}


def token_touch(name: str, at: str) -> tuple[str, dict[str, Any]]:
    return TOKEN_TOUCH, {"@coll": TOKENS_COLLECTION, "name": name, "at": at}


def session_end(doc: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return SESSION_END, {"@coll": ENDED_SESSIONS_COLLECTION, "doc": doc}


def sessions_ended(now: float) -> tuple[str, dict[str, Any]]:
    return SESSIONS_ENDED, {"@coll": ENDED_SESSIONS_COLLECTION, "now": now}


def sessions_purge(now: float) -> tuple[str, dict[str, Any]]:
    return SESSIONS_PURGE, {"@coll": ENDED_SESSIONS_COLLECTION, "now": now}


# -- rate-limit breakers -----------------------------------------------------------------------
BREAKERS: Final = "FOR d IN @@coll RETURN d"


def breakers() -> tuple[str, dict[str, Any]]:
    return BREAKERS, {"@coll": RATE_LIMITS_COLLECTION}


# -- schedules ---------------------------------------------------------------------------------
# Sorted by the store, as the tokens are.
SCHEDULES: Final = "FOR d IN @@coll RETURN d"
SCHEDULE_DELETE: Final = """
FOR d IN @@coll
  FILTER d._key == @name
  REMOVE d IN @@coll
  RETURN OLD._key
"""
# A run document: `schedule`, `scheduled_for` (fixed-width UTC text, see `records.sort_key`)
# and `run`, the ScheduleRun's JSON; the (schedule, scheduled_for) index serves these.
RUNS_DELETE: Final = """
FOR d IN @@coll
  FILTER d.schedule == @name
  REMOVE d IN @@coll
"""
LAST_TICKS: Final = """
FOR d IN @@coll
  COLLECT schedule = d.schedule AGGREGATE latest = MAX(d.scheduled_for)
  RETURN [schedule, latest]
"""
# The first page has no upper bound, a next one `before` (never a sentinel standing for "no
# bound": AQL compares strings by the server's ICU collation, where no text sorts after all).
RUNS_OF: Final = """
FOR d IN @@coll
  FILTER d.schedule == @name
  SORT d.schedule DESC, d.scheduled_for DESC
  LIMIT @limit
  RETURN d.run
"""
RUNS_BEFORE: Final = """
FOR d IN @@coll
  FILTER d.schedule == @name AND d.scheduled_for < @before
  SORT d.schedule DESC, d.scheduled_for DESC
  LIMIT @limit
  RETURN d.run
"""
ACTIVE_RUNS: Final = """
FOR d IN @@coll
  FILTER d.schedule == @name AND d.status IN @statuses
  SORT d.created, d._key
  RETURN d
"""
#: what deleting a schedule writes
SCHEDULE_COLLECTIONS: Final = (SCHEDULES_COLLECTION, RUNS_COLLECTION)
#: what deciding a tick writes
TICK_COLLECTIONS: Final = (RUNS_COLLECTION, QUEUE_COLLECTION, EVENTS_COLLECTION)


def schedules() -> tuple[str, dict[str, Any]]:
    return SCHEDULES, {"@coll": SCHEDULES_COLLECTION}


def schedule_delete(name: str) -> tuple[str, dict[str, Any]]:
    return SCHEDULE_DELETE, {"@coll": SCHEDULES_COLLECTION, "name": name}


def runs_delete(name: str) -> tuple[str, dict[str, Any]]:
    return RUNS_DELETE, {"@coll": RUNS_COLLECTION, "name": name}


def last_ticks() -> tuple[str, dict[str, Any]]:
    return LAST_TICKS, {"@coll": RUNS_COLLECTION}


def runs_of(name: str, before: str | None, limit: int) -> tuple[str, dict[str, Any]]:
    """Newest first; with `before` (sort-key text), only the ticks before it."""
    bind: dict[str, Any] = {"@coll": RUNS_COLLECTION, "name": name, "limit": limit}
    if before is None:
        return RUNS_OF, bind
    return RUNS_BEFORE, {**bind, "before": before}


def active_runs(name: str, statuses: list[str]) -> tuple[str, dict[str, Any]]:
    return ACTIVE_RUNS, {"@coll": QUEUE_COLLECTION, "name": name, "statuses": statuses}


# -- schema migrations (bootstrap) -------------------------------------------------------------
# Schema 2 keeps `jobs` on every queue document: the ones written before have it computed here
# (only a queue with a running step needs it; null is what the others hold anyway).
MIGRATE_JOBS: Final = """
FOR d IN @@coll
  FILTER d.jobs == null
  LET jobs = d.steps[* FILTER CURRENT.status IN @steps RETURN CURRENT.target]
  FILTER LENGTH(jobs) > 0
  UPDATE d WITH { jobs: jobs } IN @@coll
"""
# ... and one document per token hash (the tokens written before have none).
MIGRATE_TOKEN_HASHES: Final = """
FOR d IN @@coll
  INSERT { _key: d.sha256, name: d._key } INTO @@hashes OPTIONS { ignoreErrors: true }
"""
#: the lock documents that exist from the start, so that no first use races to create them
FIXED_LOCKS: Final = (ADMISSION_LOCK_KEY,)
SCHEMA_KEY: Final = "schema"


def migrate_jobs(steps: list[str]) -> tuple[str, dict[str, Any]]:
    return MIGRATE_JOBS, {"@coll": QUEUE_COLLECTION, "steps": steps}


def migrate_token_hashes() -> tuple[str, dict[str, Any]]:
    return MIGRATE_TOKEN_HASHES, {"@coll": TOKENS_COLLECTION, "@hashes": TOKEN_HASHES_COLLECTION}
