"""The queues part of the SQLite store: documents, their history and idempotency keys, and the
listings. A change and its history events are written in the same transaction; `update_many`
takes one transaction for its whole batch (one commit instead of one per queue)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import aiosqlite

from queue_manager.adapters import cursor as cursors
from queue_manager.adapters.sqlite_store import catalog, documents, queries
from queue_manager.adapters.sqlite_store.connection import Access
from queue_manager.adapters.sqlite_store.coverage import write_ledger
from queue_manager.adapters.store_parts import Change, Events, Inserted, Listing
from queue_manager.domain import records
from queue_manager.domain.history import QueueEvent
from queue_manager.domain.models import ACTIVE_QUEUE_STATUSES, QueueState
from queue_manager.ports import Page

#: a queue to write, with the history of its change
Written = tuple[QueueState, Events]


async def insert_new(writer: aiosqlite.Connection, changes: Sequence[Written]) -> None:
    """New queues and their first history, in the caller's transaction."""
    for queue, events in changes:
        await writer.execute(queries.INSERT_QUEUE, documents.queue_row(queue))
        if events:
            await writer.executemany(queries.INSERT_EVENT, documents.event_rows(queue.id, events))
    # the coverage ledger, in the same transaction as the queues (docs/coverage.md)
    await write_ledger(writer, [queue for queue, _ in changes])


async def write_changes(writer: aiosqlite.Connection, changes: Sequence[Written]) -> None:
    """Changed queues and the history of their changes, in the caller's transaction."""
    if not changes:
        return
    await writer.executemany(queries.UPDATE_QUEUE, [documents.change_row(q) for q, _ in changes])
    history = [row for q, events in changes for row in documents.event_rows(q.id, events)]
    if history:
        await writer.executemany(queries.INSERT_EVENT, history)
    await write_ledger(writer, [queue for queue, _ in changes])


class Queues:
    def __init__(self, db: Access) -> None:
        self._db = db

    async def insert(self, queue: QueueState, key: str | None, events: Events) -> Inserted:
        async with self._db.transaction() as writer:
            if key is not None:
                rows: Any = await writer.execute_fetchall(queries.QUEUE_BY_KEY, (key,))
                if rows:
                    # commits a transaction that wrote nothing
                    return documents.load(rows[0][0]), False
                await writer.execute(queries.INSERT_KEY, (key, queue.id))
            await insert_new(writer, [(queue, events)])
        return queue, True

    async def get(self, queue_id: str) -> QueueState | None:
        doc = await self.get_json(queue_id)
        return documents.load(doc) if doc is not None else None

    async def get_json(self, queue_id: str) -> bytes | None:
        row = self._db.point(queries.QUEUE_DOC, (queue_id,))
        return bytes(row[0]) if row else None

    async def update_many(self, changes: Mapping[str, Change]) -> dict[str, QueueState | None]:
        ids = list(changes)
        result: dict[str, QueueState | None] = dict.fromkeys(ids)
        async with self._db.transaction() as writer:
            rows: list[Any] = []
            for start in range(0, len(ids), queries.CHUNK):
                chunk = ids[start : start + queries.CHUNK]
                rows += await writer.execute_fetchall(queries.docs_of(len(chunk)), chunk)
            changed: list[Written] = []
            for queue_id, doc in rows:
                queue = documents.load(doc)
                events = changes[queue_id](queue)
                if events is not None:
                    changed.append((queue, events))
                result[queue_id] = queue
            await write_changes(writer, changed)
            await catalog.record(writer, changed)
        return result

    async def events(self, queue_id: str, *, after: int, limit: int) -> list[QueueEvent]:
        rows = await self._db.read(queries.EVENTS_OF, (queue_id, after, limit))
        return [documents.load_event(row[0]) for row in rows]

    async def page(self, listing: Listing, limit: int) -> Page:
        status = listing.status.value if listing.status is not None else None
        args: list[Any] = []
        if listing.id_prefix is not None:
            args += queries.prefix_range(listing.id_prefix)
        args += [v for v in (listing.parent, status, listing.symbol) if v is not None]
        args += [
            records.sort_key(at)
            for at in (listing.created_from, listing.created_to)
            if at is not None
        ]
        if listing.cursor is not None:
            args += cursors.decode(listing.cursor)
        sql = queries.page(
            id_prefix=listing.id_prefix is not None,
            parent=listing.parent is not None,
            status=status is not None,
            symbol=listing.symbol is not None,
            after=listing.cursor is not None,
            top_level=listing.top_level,
            created_from=listing.created_from is not None,
            created_to=listing.created_to is not None,
        )
        rows = await self._db.read(sql, (*args, limit + 1))  # one more tells a next page exists
        items = [documents.load(row[0]) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = cursors.encode(last[1], last[2])
        return Page(items=items, next_cursor=next_cursor)

    async def delete_ended(self, before: datetime, limit: int) -> list[str]:
        cutoff = records.sort_key(before)
        async with self._db.transaction() as writer:
            rows: Any = await writer.execute_fetchall(
                queries.ENDED_BEFORE, (*queries.ENDED_STATUSES, cutoff, cutoff, limit)
            )
            ids = [str(row[0]) for row in rows]
            if ids:
                for table, column in queries.PER_QUEUE:
                    await writer.execute(queries.delete_of(table, column, len(ids)), ids)
        return ids

    async def list_active(self) -> list[QueueState]:
        rows = await self._db.read(
            queries.LIST_ACTIVE, tuple(s.value for s in ACTIVE_QUEUE_STATUSES)
        )
        return [documents.load(row[0]) for row in rows]

    async def count_by_status(self) -> dict[str, int]:
        rows = await self._db.read(queries.COUNT_BY_STATUS, ())
        return {str(row[0]): int(row[1]) for row in rows}
