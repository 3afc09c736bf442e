"""A shared schema: every store keeps the same JSON document per queue.

The document is QueueState's JSON (docs/api.md names, plus the model's bookkeeping fields); the
ArangoDB document adds only its system attributes and the two helpers its indexes read, the
`created` sort key and `jobs` (the targets of its running steps; SQLite keeps both as columns).
"""

from __future__ import annotations

from typing import Any

import orjson

from queue_manager.adapters.cursor import sort_key
from queue_manager.domain.models import QueueState, Step
from queue_manager.ports import StateStore
from tests.store.conftest import Backend
from tests.store.helpers import FIXED_QUEUE_FIELDS, FIXED_STEP_FIELDS, full_queue, update_one

ARANGO_ONLY = {"_key", "_id", "_rev", "created", "jobs"}


def _canonical(queue: QueueState) -> dict[str, Any]:
    """The seed's JSON for a queue: what every store must hold."""
    doc: dict[str, Any] = orjson.loads(queue.model_dump_json())
    return doc


def test_the_model_carries_every_spec_field() -> None:
    assert set(QueueState.model_fields) >= FIXED_QUEUE_FIELDS
    assert set(Step.model_fields) >= FIXED_STEP_FIELDS


async def test_stored_document_has_the_shared_shape(store: StateStore, backend: Backend) -> None:
    queue = full_queue()
    await store.insert(queue, None)
    raw = await backend.raw_document(queue.id)
    assert raw is not None
    if backend.kind == "arango":
        assert set(raw) >= ARANGO_ONLY
        assert raw["_key"] == queue.id
        assert raw["created"] == sort_key(queue.created_at)
        assert raw["jobs"] is None  # no step of it runs
        raw = {k: v for k, v in raw.items() if k not in ARANGO_ONLY}
    # exactly the seed's QueueState field names, which include every docs/api.md name
    assert set(raw) == set(QueueState.model_fields)
    assert set(raw) >= FIXED_QUEUE_FIELDS
    for step in raw["steps"]:
        assert set(step) == set(Step.model_fields)
        assert set(step) >= FIXED_STEP_FIELDS
    # the same JSON, value for value: ISO-8601 UTC times, enum values as strings, nested params
    assert raw == _canonical(queue)
    assert raw["created_at"] == "2024-06-01T12:00:00.123456Z"
    assert raw["status"] == "error" and raw["loader_type"] == "stream"
    assert raw["steps"][0]["target"] == "loader-producer"
    assert raw["steps"][1]["depends_on"] == [0]


async def test_updates_keep_the_shape(store: StateStore, backend: Backend) -> None:
    queue = full_queue()
    await store.insert(queue, None)

    def mutate(q: QueueState) -> bool:
        q.records_written += 1
        return True

    updated = await update_one(store, queue.id, mutate)
    assert updated is not None
    raw = await backend.raw_document(queue.id)
    assert raw is not None
    raw = {k: v for k, v in raw.items() if k not in ARANGO_ONLY}
    assert raw == _canonical(updated)
