"""The catalog part of the ArangoDB store (CatalogStore): one document per collection
(`queue_catalog`, `_key` = its name) and one per (collection, consuming step)
(`queue_catalog_reads`). `record` runs inside the stream transaction `Queues.update_many`
replaces a queue in, so a step's end and what it wrote are committed together; a change that
adds nothing to the catalog declares no catalog collection (`writes`). The AQL is here, beside
its one user, as constants with bind parameters (tests/store/test_aql_bind_parameters.py)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Final

from queue_manager.adapters.arango_store.connection import Database, Query, rows
from queue_manager.adapters.arango_store.queries import (
    CATALOG_COLLECTION,
    CATALOG_READS_COLLECTION,
)
from queue_manager.adapters.store_parts import Events
from queue_manager.domain import catalog
from queue_manager.domain.catalog import CollectionEntry, CollectionInfo, Consumer
from queue_manager.domain.models import QueueState

#: what recording a change writes besides the queue
COLLECTIONS: Final = (CATALOG_COLLECTION, CATALOG_READS_COLLECTION)

ENTRIES_NAMED: Final = """
FOR d IN @@coll
  FILTER d._key IN @names
  RETURN d
"""
PUT: Final = """
FOR doc IN @docs
  UPSERT { _key: doc._key } INSERT doc REPLACE doc IN @@coll
"""
# STARTS_WITH, not a range: AQL compares strings by the server's collation, not by bytes.
LIST: Final = """
FOR d IN @@coll
  FILTER STARTS_WITH(d._key, @prefix) AND d._key > @after
  SORT d._key
  LIMIT @limit
  RETURN d
"""
NAMES: Final = """
FOR d IN @@coll
  SORT d._key
  LIMIT @limit
  RETURN d._key
"""
READS: Final = """
FOR r IN @@coll
  FILTER r.name == @name
  SORT r.name DESC, r.at DESC
  LIMIT @limit
  RETURN r.consumer
"""


def writes(base: Sequence[str], queue: QueueState, events: Events) -> tuple[str, ...]:
    """The collections a change's transaction writes: `base`, and the catalog's if it adds to
    it."""
    return (*base, *COLLECTIONS) if catalog.changes(queue, events) else tuple(base)


def _load(raw: dict[str, Any]) -> CollectionEntry:
    return CollectionEntry.model_validate({k: v for k, v in raw.items() if not k.startswith("_")})


def _named(names: list[str]) -> Query:
    return ENTRIES_NAMED, {"@coll": CATALOG_COLLECTION, "names": names}


def _put(collection: str, docs: list[dict[str, Any]]) -> Query:
    return PUT, {"@coll": collection, "docs": docs}


def _read_doc(name: str, consumer: Consumer) -> dict[str, Any]:
    return {
        "_key": f"{name}:{consumer.queue_id}:{consumer.step}",
        "name": name,
        "at": consumer.at.isoformat(),
        "consumer": consumer.model_dump(mode="json"),
    }


async def record(txn: Any, queue: QueueState, events: Events) -> None:
    """What the change adds to the catalog, in `txn` (which declared `writes`)."""
    change = catalog.changes(queue, events)
    if not change:
        return
    names = sorted({name for name, _ in change.produced})
    if names:
        entries = {str(d["_key"]): _load(d) for d in await rows(txn, _named(names))}
        for name, producer in change.produced:
            entries[name] = catalog.produced(entries.get(name), name, producer)
        docs = [{"_key": n, **entries[n].model_dump(mode="json")} for n in names]
        await rows(txn, _put(CATALOG_COLLECTION, docs))
    reads = [_read_doc(name, c) for name, c in change.consumed]
    if reads:
        await rows(txn, _put(CATALOG_READS_COLLECTION, reads))


class Catalog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def collections(
        self, prefix: str | None, *, after: str | None, limit: int
    ) -> list[CollectionEntry]:
        query = (
            LIST,
            {
                "@coll": CATALOG_COLLECTION,
                "prefix": prefix or "",
                "after": after or "",
                "limit": limit,
            },
        )
        return [_load(d) for d in await self._db.query("list collections", query)]

    async def collection(self, name: str, *, consumers: int) -> CollectionInfo | None:
        found = await self._db.query(f"read collection {name}", _named([name]))
        if not found:
            return None
        reads = READS, {"@coll": CATALOG_READS_COLLECTION, "name": name, "limit": consumers}
        read = await self._db.query(f"read consumers of {name}", reads)
        return CollectionInfo(
            **_load(found[0]).model_dump(), consumers=[Consumer.model_validate(r) for r in read]
        )

    async def known_collections(self, names: Collection[str]) -> set[str]:
        if not names:
            return set()
        found = await self._db.query("look up collections", _named(sorted(set(names))))
        return {str(d["_key"]) for d in found}

    async def collection_names(self, limit: int) -> list[str]:
        query = NAMES, {"@coll": CATALOG_COLLECTION, "limit": limit}
        return [str(n) for n in await self._db.query("list collection names", query)]
