"""Production state store: ArangoDB on the official async driver (`python-arango-async`).

Split by concern: `store` (the StateStore: documents and listings), `admission` (admit, claim,
the backfill recount), `queries` (every AQL text), `documents` (how each record is held),
`errors` (driver errors -> DependencyUnavailable, credentials scrubbed), `bootstrap` (database,
collections, indexes), `tokens` (the TokenStore and SessionStore half), `schedules` (the
ScheduleStore half).
"""

from queue_manager.adapters.arango_store.queries import (
    ENDED_SESSIONS_COLLECTION,
    EVENTS_COLLECTION,
    KEYS_COLLECTION,
    LOCKS_COLLECTION,
    QUEUE_COLLECTION,
    RUNS_COLLECTION,
    SCHEDULES_COLLECTION,
    TOKENS_COLLECTION,
)
from queue_manager.adapters.arango_store.store import ArangoStore

__all__ = [
    "ENDED_SESSIONS_COLLECTION",
    "EVENTS_COLLECTION",
    "KEYS_COLLECTION",
    "LOCKS_COLLECTION",
    "QUEUE_COLLECTION",
    "RUNS_COLLECTION",
    "SCHEDULES_COLLECTION",
    "TOKENS_COLLECTION",
    "ArangoStore",
]
