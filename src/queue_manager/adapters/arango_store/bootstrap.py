"""What the ArangoDB store makes sure exists before it serves: the database (when the user may
create it), the collections and their indexes. Safe when several replicas start at once."""

from __future__ import annotations

from typing import Any

from arangoasync.exceptions import ArangoServerError

from queue_manager.adapters.arango_store.errors import (
    ERR_DUPLICATE_NAME,
    HTTP_FORBIDDEN,
    HTTP_UNAUTHORIZED,
    server_codes,
)
from queue_manager.adapters.arango_store.queries import (
    ENDED_SESSIONS_COLLECTION,
    EVENTS_COLLECTION,
    INDEXES,
    KEYS_COLLECTION,
    LOCKS_COLLECTION,
    QUEUE_COLLECTION,
    RUNS_COLLECTION,
    SCHEDULES_COLLECTION,
    TOKENS_COLLECTION,
)


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
    names = (QUEUE_COLLECTION, KEYS_COLLECTION, TOKENS_COLLECTION, EVENTS_COLLECTION)
    more = (LOCKS_COLLECTION, SCHEDULES_COLLECTION, RUNS_COLLECTION, ENDED_SESSIONS_COLLECTION)
    for name in (*names, *more):
        if not await db.has_collection(name):
            try:
                await db.create_collection(name)
            except ArangoServerError as exc:
                if server_codes(exc)[1] != ERR_DUPLICATE_NAME:  # another replica won
                    raise
    coll = db.collection(QUEUE_COLLECTION)
    for index_name, fields in INDEXES:
        # Creating an index that exists with the same definition returns the existing one.
        await coll.add_index(
            type="persistent",
            fields=fields,
            options={"name": index_name, "unique": False, "sparse": False},
        )
    # Retention removes a queue's idempotency keys by queue id.
    await db.collection(KEYS_COLLECTION).add_index(
        type="persistent",
        fields=["queue_id"],
        options={"name": "queue_idempotency_queue", "unique": False, "sparse": False},
    )
    # A queue's history in order; two events can never share a queue and seq.
    await db.collection(EVENTS_COLLECTION).add_index(
        type="persistent",
        fields=["queue_id", "seq"],
        options={"name": "queue_events_seq", "unique": True, "sparse": False},
    )
    # A schedule's decided ticks, newest first; the latest per schedule. (The key already makes
    # a tick unique; the index keeps it so for whoever writes the collection.)
    await db.collection(RUNS_COLLECTION).add_index(
        type="persistent",
        fields=["schedule", "scheduled_for"],
        options={"name": "queue_schedule_runs_tick", "unique": True, "sparse": False},
    )
    # Two tokens can never share a hash, so a lookup by hash names one token.
    await db.collection(TOKENS_COLLECTION).add_index(
        type="persistent",
        fields=["sha256"],
        options={"name": "api_tokens_sha256", "unique": True, "sparse": False},
    )
    # Logged-out sessions are listed, and purged, by when they would have ended.
    await db.collection(ENDED_SESSIONS_COLLECTION).add_index(
        type="persistent",
        fields=["until"],
        options={"name": "ended_sessions_until", "unique": False, "sparse": False},
    )
