"""What the ArangoDB store makes sure exists before it serves: the database (when the user may
create it), the collections, their indexes, the fixed lock documents, and the current schema.
Safe when several replicas start at once: every step is idempotent.

Schema 2 (this release) holds no unique index — uniqueness comes from `_key`, the shard key, so
the same schema runs on a single server and on a cluster (which refuses unique indexes on other
attributes). A database made by schema 1 is migrated in place at start-up, once, recorded in
`queue_locks/schema`: the new non-unique indexes are built before the unique ones they replace
are dropped; queue documents with a running step get their `jobs`; every token gets its hash's
document. Events written by schema 1 keep their generated keys (nothing refers to an event's
key, and their (queue, seq) pairs are unique already); new ones are keyed `<queue_id>:<seq>`.
"""

from __future__ import annotations

from typing import Any, Final

from arangoasync.exceptions import ArangoServerError

from queue_manager.adapters.arango_store import queries
from queue_manager.adapters.arango_store.connection import rows
from queue_manager.adapters.arango_store.errors import (
    ERR_DUPLICATE_NAME,
    HTTP_FORBIDDEN,
    HTTP_UNAUTHORIZED,
    server_codes,
)
from queue_manager.adapters.arango_store.queries import LOCKS_COLLECTION
from queue_manager.domain.admission import RUNNING_STEPS

SCHEMA_VERSION: Final = 2


async def create_database(sys_db: Any, name: str) -> None:
    """Create the database from `_system` when this user may; otherwise assume it exists."""
    try:
        if not await sys_db.has_database(name):
            await sys_db.create_database(name)
    except ArangoServerError as exc:
        http, err = server_codes(exc)
        if http in (HTTP_UNAUTHORIZED, HTTP_FORBIDDEN) or err == ERR_DUPLICATE_NAME:
            return  # no rights on _system (checked again on the database) or a race
        raise


async def create_collections(db: Any) -> None:
    for name in queries.COLLECTIONS:
        if not await db.has_collection(name):
            try:
                await db.create_collection(name)
            except ArangoServerError as exc:
                if server_codes(exc)[1] != ERR_DUPLICATE_NAME:  # another replica won
                    raise
    for index in queries.INDEXES:
        # Creating an index that exists with the same definition returns the existing one.
        await db.collection(index.collection).add_index(
            type="persistent",
            fields=list(index.fields),
            options={"name": index.name, "unique": False, "sparse": index.sparse},
        )
    for collection, index_name in queries.UNIQUE_INDEXES_OF_SCHEMA_1:
        await _drop_index(db.collection(collection), index_name)
    locks = db.collection(LOCKS_COLLECTION)
    for key in queries.FIXED_LOCKS:
        await locks.insert({"_key": key, "n": 0}, overwrite_mode="ignore", silent=True)
    await _migrate(db)


async def _drop_index(collection: Any, name: str) -> None:
    for index in await collection.indexes():
        if index.get("name") == name:
            await collection.delete_index(index["id"], ignore_missing=True)


async def _migrate(db: Any) -> None:
    locks = db.collection(LOCKS_COLLECTION)
    schema = await locks.get(queries.SCHEMA_KEY)
    if schema is not None and int(schema.get("version", 0)) >= SCHEMA_VERSION:
        return
    await rows(db, queries.migrate_jobs(sorted(s.value for s in RUNNING_STEPS)))
    await rows(db, queries.migrate_token_hashes())
    doc = {"_key": queries.SCHEMA_KEY, "version": SCHEMA_VERSION}
    await locks.insert(doc, overwrite_mode="replace", silent=True)
