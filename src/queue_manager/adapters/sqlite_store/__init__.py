"""Embedded state store: one SQLite file in WAL mode, safe for several processes at once.

The same parts as the ArangoDB store (`adapters.store_parts`), module for module: `queues`
(documents, history, idempotency keys, listings), `admission` (admit, claim, the backfill
recount), `schedules`, `tokens`, `sessions`, `rate_limits` (the rate-limit breakers); beside
them `store` (the store: open, close, ping), `connection` (the file and its connections),
`bootstrap` (the schema), `queries` (every other SQL text) and `documents` (how each record is
held).
"""

from queue_manager.adapters.sqlite_store.store import SQLiteStore

__all__ = ["SQLiteStore"]
