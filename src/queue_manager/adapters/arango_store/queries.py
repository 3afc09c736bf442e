"""Every AQL text the ArangoDB store runs, and what it binds (docs/operations.md).

Each query is a module constant; values always travel as bind parameters and collections as
`@@` parameters (tests/store/test_aql_bind_parameters.py scans these constants). The eight list
queries are assembled here, once at import, from fixed fragments chosen by three booleans —
never from a value — so a request can pick a query but never change its text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

QUEUE_COLLECTION: Final = "queue_state"
KEYS_COLLECTION: Final = "queue_idempotency"
TOKENS_COLLECTION: Final = "api_tokens"
EVENTS_COLLECTION: Final = "queue_events"
#: one document, written first by every admission and claim so that they run one at a time
LOCKS_COLLECTION: Final = "queue_locks"

# persistent indexes: (name, fields). Each serves one list filter plus the newest-first sort.
INDEXES: Final[tuple[tuple[str, list[str]], ...]] = (
    ("queue_state_created", ["created", "_key"]),
    ("queue_state_status", ["status", "created", "_key"]),
    ("queue_state_symbol", ["symbol", "created", "_key"]),
    ("queue_state_admission", ["status", "priority", "created", "_key"]),
)

# -- list pages: keyset pagination ------------------------------------------------------------
_SCAN: Final = "FOR d IN @@coll"
_BY_STATUS: Final = "  FILTER d.status == @status"
_BY_SYMBOL: Final = "  FILTER d.symbol == @symbol"
# `created <= @created` is the index range; the second condition drops the rows of the same
# instant already returned (ties broken by `_key`), so no OFFSET is needed.
_AFTER_CURSOR: Final = (
    "  FILTER d.created <= @created\n  FILTER d.created < @created OR d._key < @key"
)
_NEWEST_FIRST: Final = "  SORT d.created DESC, d._key DESC\n  LIMIT @limit\n  RETURN d"


def _page_query(by_status: bool, by_symbol: bool, after_cursor: bool) -> str:
    parts = [_SCAN]
    if by_status:
        parts.append(_BY_STATUS)
    if by_symbol:
        parts.append(_BY_SYMBOL)
    if after_cursor:
        parts.append(_AFTER_CURSOR)
    parts.append(_NEWEST_FIRST)
    return "\n".join(parts)


#: (filter by status, filter by symbol, after a cursor) -> query
PAGE_QUERIES: Final[Mapping[tuple[bool, bool, bool], str]] = {
    (status, symbol, after): _page_query(status, symbol, after)
    for status in (False, True)
    for symbol in (False, True)
    for after in (False, True)
}


def page(
    *, status: str | None, symbol: str | None, limit: int, after: tuple[str, str] | None
) -> tuple[str, dict[str, Any]]:
    """The list query and its bind parameters; `after` is the last row's (created, _key)."""
    bind: dict[str, Any] = {"@coll": QUEUE_COLLECTION, "limit": limit}
    if status is not None:
        bind["status"] = status
    if symbol is not None:
        bind["symbol"] = symbol
    if after is not None:
        bind["created"], bind["key"] = after
    query = PAGE_QUERIES[(status is not None, symbol is not None, after is not None)]
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
PING: Final = "RETURN 1"
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


# -- history -----------------------------------------------------------------------------------
# The unique (queue_id, seq) index serves this range and makes a duplicate event impossible.
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


def events_insert(queue_id: str, events: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    rows = [{**event, "queue_id": queue_id} for event in events]
    return EVENTS_INSERT, {"@coll": EVENTS_COLLECTION, "events": rows}


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


# -- admission (MAX_RUNNING_QUEUES, MAX_RUNNING_JOBS) ------------------------------------------
# Two transactions writing this document conflict: the second is retried after the first.
ADMISSION_LOCK: Final = """
UPSERT { _key: @key } INSERT { _key: @key, n: 1 } UPDATE { n: OLD.n + 1 } IN @@coll
"""
RUNNING_COUNT: Final = """
RETURN LENGTH(FOR d IN @@coll FILTER d.status IN @running RETURN 1)
"""
# Admission order: priority, then oldest; `_key` breaks ties the same way everywhere.
QUEUED_NEXT: Final = """
FOR d IN @@coll
  FILTER d.status == @queued
  SORT d.priority DESC, d.created, d._key
  LIMIT @limit
  RETURN d
"""
QUEUED_ORDER: Final = """
FOR d IN @@coll
  FILTER d.status == @queued
  SORT d.priority DESC, d.created, d._key
  RETURN d._key
"""
RUNNING_JOBS: Final = """
FOR d IN @@coll
  FILTER d.status IN @running
  RETURN d.steps[* FILTER CURRENT.status IN @steps AND CURRENT.target IN @targets].target
"""


def admission_lock() -> tuple[str, dict[str, Any]]:
    return ADMISSION_LOCK, {"@coll": LOCKS_COLLECTION, "key": "admission"}


def running_count(running: list[str]) -> tuple[str, dict[str, Any]]:
    return RUNNING_COUNT, {"@coll": QUEUE_COLLECTION, "running": running}


def queued_next(queued: str, limit: int) -> tuple[str, dict[str, Any]]:
    return QUEUED_NEXT, {"@coll": QUEUE_COLLECTION, "queued": queued, "limit": limit}


def queued_order(queued: str) -> tuple[str, dict[str, Any]]:
    return QUEUED_ORDER, {"@coll": QUEUE_COLLECTION, "queued": queued}


def running_jobs(
    running: list[str], steps: list[str], targets: list[str]
) -> tuple[str, dict[str, Any]]:
    bind = {"@coll": QUEUE_COLLECTION, "running": running, "steps": steps}
    return RUNNING_JOBS, {**bind, "targets": targets}


# -- API tokens ------------------------------------------------------------------------------
# A duplicate name (the key) or hash (unique index) is skipped, and then nothing is returned.
TOKEN_INSERT: Final = "INSERT @doc INTO @@coll OPTIONS { ignoreErrors: true } RETURN NEW._key"
TOKEN_BY_HASH: Final = "FOR d IN @@coll FILTER d.sha256 == @sha256 LIMIT 1 RETURN d"
TOKENS: Final = "FOR d IN @@coll SORT d._key RETURN d"
TOKEN_DELETE: Final = (
    "REMOVE { _key: @name } IN @@coll OPTIONS { ignoreErrors: true } RETURN OLD._key"
)
TOKEN_TOUCH: Final = (
    "UPDATE { _key: @name } WITH { last_used_at: @at } IN @@coll OPTIONS { ignoreErrors: true }"
)
