"""The catalog of collections (docs/pipelines.md "The catalog"): reading it, and holding a
start request's inputs to it."""

from __future__ import annotations

from collections.abc import Sequence

from queue_manager.domain import catalog
from queue_manager.domain.catalog import CollectionEntry, CollectionInfo, StepInputs
from queue_manager.domain.errors import CollectionNotFound
from queue_manager.ports import CatalogStore

#: the most catalog names a refused input's suggestions are looked for among
SUGGESTION_POOL = 10_000
#: the consumers a collection is shown with
CONSUMERS = 100


class CatalogService:
    def __init__(self, store: CatalogStore) -> None:
        self.store = store

    async def entries(
        self, prefix: str | None, *, after: str | None, limit: int
    ) -> list[CollectionEntry]:
        return await self.store.collections(prefix, after=after, limit=limit)

    async def get(self, name: str) -> CollectionInfo:
        found = await self.store.collection(name, consumers=CONSUMERS)
        if found is None:
            raise CollectionNotFound(name)
        return found

    async def input_errors(self, steps: Sequence[StepInputs]) -> list[dict[str, str]]:
        """Each input of a request that nothing produced (`catalog.input_errors`). The store is
        asked only about the inputs the request does not make itself, and for names to suggest
        only when one of them is unknown."""
        wanted = catalog.wanted(steps)
        if not wanted:
            return catalog.input_errors(steps, set(), [])
        known = await self.store.known_collections(wanted)
        pool = await self.store.collection_names(SUGGESTION_POOL) if wanted - known else []
        return catalog.input_errors(steps, known, pool)
