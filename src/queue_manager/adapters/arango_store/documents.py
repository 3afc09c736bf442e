"""How a queue is held in ArangoDB: QueueState's JSON plus `_key` (the queue id) and `created`
(fixed-width UTC text, see `cursor.sort_key`), the list helper the indexes sort on."""

from __future__ import annotations

import hashlib
import re
from typing import Any, Final

from pydantic import ValidationError

from queue_manager.adapters import cursor as cursors
from queue_manager.adapters.arango_store.queries import QUEUE_COLLECTION
from queue_manager.domain.errors import DependencyUnavailable
from queue_manager.domain.models import QueueState

#: attributes the store adds around QueueState's JSON; stripped when loading
_STORE_FIELDS: Final = frozenset({"_key", "_id", "_rev", "created"})

#: what ArangoDB accepts as a document key; anything else cannot name a stored queue
_VALID_KEY = re.compile(r"^[A-Za-z0-9_\-:.@()+,=;$!*'%]{1,254}$")


def valid_key(queue_id: str) -> bool:
    return _VALID_KEY.match(queue_id) is not None


def document(queue: QueueState) -> dict[str, Any]:
    doc: dict[str, Any] = queue.model_dump(mode="json")
    doc["_key"] = queue.id
    doc["created"] = cursors.sort_key(queue.created_at)
    return doc


def load(doc: dict[str, Any]) -> QueueState:
    fields = {k: v for k, v in doc.items() if k not in _STORE_FIELDS}
    try:
        return QueueState.model_validate(fields)
    except ValidationError as exc:
        key = doc.get("_key")
        raise DependencyUnavailable(
            "store", f"document {key} in {QUEUE_COLLECTION} is not a valid queue: {exc}"
        ) from exc


def idempotency_key(key: str) -> str:
    """Any client string -> a valid, fixed-length document key."""
    return hashlib.sha256(key.encode()).hexdigest()
