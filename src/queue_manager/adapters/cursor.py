"""Opaque keyset cursors for newest-first listings, shared by every store."""

from __future__ import annotations

import base64
from datetime import datetime

import orjson

from queue_manager.domain.errors import InvalidRequest


def sort_key(created_at: datetime) -> str:
    """Fixed-width UTC text that sorts like the instant it names."""
    return created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode(created: str, queue_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([created, queue_id])).decode().rstrip("=")


def decode(cursor: str) -> tuple[str, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, queue_id = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(created, str) or not isinstance(queue_id, str):
            raise ValueError
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise InvalidRequest(
            [{"field": "cursor", "message": "not a cursor returned by this API (use next_cursor)"}]
        ) from None
    return created, queue_id
