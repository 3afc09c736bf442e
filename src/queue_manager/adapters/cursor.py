"""Opaque keyset cursors for newest-first listings, shared by every store."""

from __future__ import annotations

import base64

import orjson

from queue_manager.domain.errors import InvalidRequest
from queue_manager.domain.records import from_sort_key
from queue_manager.domain.records import sort_key as sort_key  # what a cursor carries


def encode(created: str, queue_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([created, queue_id])).decode().rstrip("=")


def decode(cursor: str) -> tuple[str, str]:
    """The position a cursor of `encode` names. Only such a cursor is one: exactly the text
    `encode` makes, of a `sort_key` and a queue id; anything else (other JSON, another
    encoding of the same JSON) is a 422 naming `cursor`, never taken for some position."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(position, list) or len(position) != 2:
            raise ValueError
        created, queue_id = position
        if not isinstance(created, str) or not isinstance(queue_id, str) or not queue_id:
            raise ValueError
        from_sort_key(created)
        if encode(created, queue_id) != cursor:
            raise ValueError
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise InvalidRequest(
            [{"field": "cursor", "message": "not a cursor returned by this API (use next_cursor)"}]
        ) from None
    return created, queue_id
