"""The catalog part of the SQLite store (CatalogStore): one row per collection (its entry's
JSON, keyed by name) and one per (collection, consuming step). `record` is called by
`Queues.update_many` inside its transaction, so a step's end and what it wrote are committed
together or not at all."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import aiosqlite

from queue_manager.adapters.sqlite_store import queries
from queue_manager.adapters.sqlite_store.connection import Access
from queue_manager.adapters.store_parts import Events
from queue_manager.domain import catalog, records
from queue_manager.domain.catalog import CollectionEntry, CollectionInfo, Consumer
from queue_manager.domain.models import QueueState


async def record(
    writer: aiosqlite.Connection, changed: Sequence[tuple[QueueState, Events]]
) -> None:
    """What the changes add to the catalog, in the caller's transaction."""
    found = [c for c in (catalog.changes(q, events) for q, events in changed) if c]
    if not found:
        return
    names = sorted({name for c in found for name, _ in c.produced})
    entries: dict[str, CollectionEntry] = {}
    for start in range(0, len(names), queries.CHUNK):
        chunk = names[start : start + queries.CHUNK]
        rows: Any = await writer.execute_fetchall(queries.collections_named(len(chunk)), chunk)
        entries.update({str(row[0]): CollectionEntry.model_validate_json(row[1]) for row in rows})
    written: set[str] = set()
    for change in found:
        for name, producer in change.produced:
            entries[name] = catalog.produced(entries.get(name), name, producer)
            written.add(name)
    if written:
        await writer.executemany(
            queries.COLLECTION_PUT,
            [(name, entries[name].model_dump_json().encode()) for name in sorted(written)],
        )
    reads = [_read_row(name, c) for change in found for name, c in change.consumed]
    if reads:
        await writer.executemany(queries.COLLECTION_READ_PUT, reads)


def _read_row(name: str, consumer: Consumer) -> tuple[Any, ...]:
    return (
        name,
        consumer.queue_id,
        consumer.step,
        records.sort_key(consumer.at),
        consumer.model_dump_json().encode(),
    )


class Catalog:
    def __init__(self, db: Access) -> None:
        self._db = db

    async def collections(
        self, prefix: str | None, *, after: str | None, limit: int
    ) -> list[CollectionEntry]:
        if prefix:
            args: tuple[Any, ...] = (*queries.prefix_range(prefix), after or "", limit)
            rows = await self._db.read(queries.COLLECTIONS_PREFIXED, args)
        else:
            rows = await self._db.read(queries.COLLECTIONS_AFTER, (after or "", limit))
        return [CollectionEntry.model_validate_json(row[0]) for row in rows]

    async def collection(self, name: str, *, consumers: int) -> CollectionInfo | None:
        row = self._db.point(queries.COLLECTION, (name,))
        if row is None:
            return None
        entry = CollectionEntry.model_validate_json(row[0])
        reads = await self._db.read(queries.COLLECTION_READS, (name, consumers))
        read = [Consumer.model_validate_json(r[0]) for r in reads]
        return CollectionInfo(**entry.model_dump(), consumers=read)

    async def known_collections(self, names: Collection[str]) -> set[str]:
        wanted = sorted(set(names))
        known: set[str] = set()
        for start in range(0, len(wanted), queries.CHUNK):
            chunk = wanted[start : start + queries.CHUNK]
            rows = await self._db.read(queries.collections_named(len(chunk)), tuple(chunk))
            known.update(str(row[0]) for row in rows)
        return known

    async def collection_names(self, limit: int) -> list[str]:
        return [str(row[0]) for row in await self._db.read(queries.COLLECTION_NAMES, (limit,))]
