"""Production state store: ArangoDB on the official async driver (`python-arango-async`).

The same parts as the SQLite store (`adapters.store_parts`), module for module: `queues`
(documents, history, idempotency keys, listings, retention), `admission` (admit, claim, the
backfill recount), `schedules`, `tokens`, `sessions`, `rate_limits` (the rate-limit breakers);
beside them `store` (the store: open, close, ping), `connection` (what the parts share: the
database, transactions, per-queue turns), `retry` (the one retry loop), `client` (a driver
client that never sends a request twice), `bootstrap` (database, collections, indexes,
migrations), `queries` (every AQL text), `documents` (how each record is held) and `errors`
(driver errors -> DependencyUnavailable, credentials scrubbed).
"""

from queue_manager.adapters.arango_store.queries import (
    ENDED_SESSIONS_COLLECTION,
    EVENTS_COLLECTION,
    KEYS_COLLECTION,
    LOCKS_COLLECTION,
    QUEUE_COLLECTION,
    RATE_LIMITS_COLLECTION,
    RUNS_COLLECTION,
    SCHEDULES_COLLECTION,
    TOKEN_HASHES_COLLECTION,
    TOKENS_COLLECTION,
)
from queue_manager.adapters.arango_store.store import ArangoStore

__all__ = [
    "ENDED_SESSIONS_COLLECTION",
    "EVENTS_COLLECTION",
    "KEYS_COLLECTION",
    "LOCKS_COLLECTION",
    "QUEUE_COLLECTION",
    "RATE_LIMITS_COLLECTION",
    "RUNS_COLLECTION",
    "SCHEDULES_COLLECTION",
    "TOKENS_COLLECTION",
    "TOKEN_HASHES_COLLECTION",
    "ArangoStore",
]
