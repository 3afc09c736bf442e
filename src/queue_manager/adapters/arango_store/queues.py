"""The queues part of the ArangoDB store: documents, their history and idempotency keys, and the
listings. Several replicas may write at once:

* `update_many` is optimistic, document by document: it reads the document with its `_rev`,
  applies `mutate`, and replaces it only if the revision is unchanged (`If-Match`); when another
  replica wrote first, it reads again and re-applies `mutate`, so no replica ever overwrites
  another's write. Writers of one process also take turns per queue, which keeps conflicts to
  the ones between replicas. A change with history events is replaced and its events inserted
  in one stream transaction; a progress tick is a single replace.
* an idempotency key is a document of `queue_idempotency` whose `_key` is the key's SHA-256:
  the primary index makes it unique, and a stream transaction stores it with the queue, so a
  retried start can never create a second queue.
* listings are keyset pages over persistent indexes (`created`, `_key`), with optional equality
  prefixes `status` / `symbol` / `parent` (a backfill's children): no OFFSET, no full count.
* retention removes the queues, their keys, their history and their recount locks in one
  stream transaction: a failure leaves all of it, never a queue without its history or
  history without its queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from arangoasync.exceptions import ArangoServerError

from queue_manager.adapters import cursor as cursors
from queue_manager.adapters.arango_store import catalog, coverage, documents, queries
from queue_manager.adapters.arango_store.connection import Database, rows
from queue_manager.adapters.arango_store.errors import (
    ERR_DOCUMENT_NOT_FOUND,
    ERR_UNIQUE,
    server_codes,
)
from queue_manager.adapters.arango_store.queries import (
    EVENTS_COLLECTION,
    KEYS_COLLECTION,
    QUEUE_COLLECTION,
)
from queue_manager.adapters.arango_store.retry import Contended
from queue_manager.adapters.store_parts import Change, Events, Inserted, Listing
from queue_manager.domain import records
from queue_manager.domain.coverage import fingerprint as ledger_fingerprint
from queue_manager.domain.history import QueueEvent
from queue_manager.domain.models import ACTIVE_QUEUE_STATUSES, QueueState, QueueStatus
from queue_manager.ports import Page

_PARALLEL_UPDATES: Final = 16
_INSERT_COLLECTIONS: Final = (QUEUE_COLLECTION, KEYS_COLLECTION, EVENTS_COLLECTION)
_CHANGE_COLLECTIONS: Final = (QUEUE_COLLECTION, EVENTS_COLLECTION)


async def insert_events(txn: Any, queue_id: str, events: Events) -> None:
    if events:
        await rows(txn, queries.events_insert(documents.event_documents(queue_id, events)))


async def replace(txn: Any, queue: QueueState, rev: str, events: Events) -> None:
    """Replace the queue in `txn` if still at `rev`, with the history of the change."""
    doc = documents.document(queue)
    await txn.collection(QUEUE_COLLECTION).replace(doc, if_match=rev, silent=True)
    await insert_events(txn, queue.id, events)


async def _replace_and_record(txn: Any, queue: QueueState, rev: str, events: Events) -> None:
    """`replace`, and what the change adds to the catalog, in one transaction."""
    await replace(txn, queue, rev, events)
    await catalog.record(txn, queue, events)


async def _replace_with_ledger(
    txn: Any, queue: QueueState, rev: str, events: Events, ledger: bool
) -> None:
    """`_replace_and_record`, and the queue's coverage cells when they changed."""
    await _replace_and_record(txn, queue, rev, events)
    if ledger:
        await coverage.record(txn, [queue])


class Queues:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(self, queue: QueueState, key: str | None, events: Events) -> Inserted:
        doc = documents.document(queue)
        key_doc = None
        if key is not None:
            key_doc = {"_key": documents.idempotency_key(key), "key": key, "queue_id": queue.id}

        async def store(txn: Any) -> None:
            if key_doc is not None:
                try:
                    await txn.collection(KEYS_COLLECTION).insert(key_doc, silent=True)
                except ArangoServerError as exc:
                    if server_codes(exc)[1] == ERR_UNIQUE:
                        # Another request holds the key (maybe not committed yet): read again.
                        raise Contended(str(exc)) from exc
                    raise
            await txn.collection(QUEUE_COLLECTION).insert(doc, silent=True)
            await insert_events(txn, queue.id, events)
            await coverage.record(txn, [queue])

        async def attempt() -> Inserted:
            if key_doc is not None:
                existing = await self._by_idempotency_key(key_doc["_key"])
                if existing is not None:
                    return existing, False
            await self._db.commit(coverage.writes(_INSERT_COLLECTIONS, True), store)
            return queue, True

        return await self._db.retry(f"insert queue {queue.id}", attempt)

    async def _by_idempotency_key(self, doc_key: str) -> QueueState | None:
        found = await self._db.require().collection(KEYS_COLLECTION).get(doc_key)
        return None if found is None else await self.get(str(found["queue_id"]))

    async def get(self, queue_id: str) -> QueueState | None:
        raw = await self.raw_document(queue_id)
        return documents.load(raw) if raw is not None else None

    async def raw_document(self, queue_id: str) -> dict[str, Any] | None:
        """The stored document as ArangoDB holds it (with `_key`, `_rev`, `created`)."""
        db = self._db.require()
        if not documents.valid_key(queue_id):
            return None  # not a key ArangoDB could hold (and never a path to another collection)
        async with self._db.guard(f"read queue {queue_id}"):
            raw = await db.collection(QUEUE_COLLECTION).get(queue_id)
        return dict(raw) if raw is not None else None

    async def get_json(self, queue_id: str) -> bytes | None:
        queue = await self.get(queue_id)
        return queue.model_dump_json().encode() if queue is not None else None

    async def update_many(self, changes: Mapping[str, Change]) -> dict[str, QueueState | None]:
        # Documents are independent in ArangoDB: optimistic updates side by side, bounded.
        gate = asyncio.Semaphore(_PARALLEL_UPDATES)

        async def one(queue_id: str) -> QueueState | None:
            async with gate:
                return await self._update_one(queue_id, changes[queue_id])

        results = await asyncio.gather(*(one(queue_id) for queue_id in changes))
        return dict(zip(changes, results, strict=True))

    async def _update_one(self, queue_id: str, mutate: Change) -> QueueState | None:
        db = self._db.require()
        if not documents.valid_key(queue_id):
            return None
        coll = db.collection(QUEUE_COLLECTION)

        async def attempt() -> QueueState | None:
            raw = await coll.get(queue_id)
            if raw is None:
                return None
            queue = documents.load(raw)
            cells_before = ledger_fingerprint(queue)
            events = mutate(queue)  # domain code: its errors are not the store's
            if events is None:
                return queue
            # the coverage ledger, in the same transaction when the queue's cells change
            ledger = ledger_fingerprint(queue) != cells_before
            try:
                if events or ledger:
                    await self._db.commit(
                        coverage.writes(catalog.writes(_CHANGE_COLLECTIONS, queue, events), ledger),
                        lambda txn: _replace_with_ledger(txn, queue, raw["_rev"], events, ledger),
                    )
                else:  # a progress tick: one request, no transaction
                    doc = documents.document(queue)
                    await coll.replace(doc, if_match=raw["_rev"], silent=True)
            except ArangoServerError as exc:
                if server_codes(exc)[1] == ERR_DOCUMENT_NOT_FOUND:
                    return None  # deleted meanwhile
                raise
            return queue

        async with self._db.queue_turn(queue_id):
            return await self._db.retry(f"update queue {queue_id}", attempt)

    async def events(self, queue_id: str, *, after: int, limit: int) -> list[QueueEvent]:
        found = await self._db.query(
            f"read history of {queue_id}", queries.events_of(queue_id, after, limit)
        )
        return [QueueEvent.model_validate(row) for row in found]

    async def page(self, listing: Listing, limit: int) -> Page:
        # One more row than asked tells whether a next page exists.
        query = queries.page(
            status=listing.status.value if listing.status is not None else None,
            symbol=listing.symbol,
            limit=limit + 1,
            after=cursors.decode(listing.cursor) if listing.cursor is not None else None,
            parent=listing.parent,
            id_prefix=listing.id_prefix,
            top_level=listing.top_level,
            created_from=_sort_key(listing.created_from),
            created_to=_sort_key(listing.created_to),
        )
        found = await self._db.query("list queues", query)
        items = [documents.load(row) for row in found[:limit]]
        next_cursor = None
        if len(found) > limit and limit > 0:
            last = found[limit - 1]
            next_cursor = cursors.encode(str(last["created"]), str(last["_key"]))
        return Page(items=items, next_cursor=next_cursor)

    async def delete_ended(self, before: datetime, limit: int) -> list[str]:
        ended = [s.value for s in QueueStatus if s.terminal]
        cutoff = int(before.timestamp() * 1000)
        query = queries.delete_ended(ended, records.sort_key(before), cutoff, limit)

        async def prune(txn: Any) -> list[str]:
            ids = [str(key) for key in await rows(txn, query)]
            if ids:
                await rows(txn, queries.delete_keys_of(ids))
                await rows(txn, queries.delete_events_of(ids))
                await rows(txn, queries.delete_parent_locks(ids))
            return ids

        return await self._db.transaction("prune queues", queries.RETENTION_COLLECTIONS, prune)

    async def list_active(self) -> list[QueueState]:
        query = queries.list_active([s.value for s in ACTIVE_QUEUE_STATUSES])
        return [documents.load(row) for row in await self._db.query("list active queues", query)]

    async def count_by_status(self) -> dict[str, int]:
        found = await self._db.query("count queues", queries.count_by_status())
        return {str(status): int(n) for status, n in found}


def _sort_key(at: datetime | None) -> str | None:
    return records.sort_key(at) if at is not None else None
