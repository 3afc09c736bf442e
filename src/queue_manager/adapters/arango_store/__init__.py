"""Production state store: ArangoDB on the official async driver (`python-arango-async`).

Split by concern: `store` (the StateStore: documents and listings), `queries` (every AQL text),
`errors` (driver errors -> DependencyUnavailable, credentials scrubbed), `bootstrap` (database,
collections, indexes), `tokens` (the TokenStore half).
"""

from queue_manager.adapters.arango_store.queries import (
    KEYS_COLLECTION,
    QUEUE_COLLECTION,
    TOKENS_COLLECTION,
)
from queue_manager.adapters.arango_store.store import ArangoStore

__all__ = ["KEYS_COLLECTION", "QUEUE_COLLECTION", "TOKENS_COLLECTION", "ArangoStore"]
