"""How a store writes values down where it cannot keep the model itself.

Both stores hold the same text for the same value, so a listing, a cursor or a token reads back
the same whichever store wrote it: an instant as fixed-width UTC text (it sorts like the instant,
in bytes and in any collation, because it is all digits at fixed places), and a token as plain
fields with ISO-8601 times.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from queue_manager.domain.identity import ApiToken, Role

#: the layout of `sort_key`
SORT_KEY_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"


def sort_key(at: datetime) -> str:
    """Fixed-width UTC text that sorts like the instant it names."""
    return at.strftime(SORT_KEY_FORMAT)


def from_sort_key(key: str) -> datetime:
    """`sort_key` read back; ValueError (or TypeError) when `key` is not one."""
    return datetime.strptime(key, SORT_KEY_FORMAT).replace(tzinfo=UTC)


#: a token's stored fields, in the order SQLite's columns hold them
TOKEN_FIELDS: Final = ("name", "role", "sha256", "created_at", "expires_at", "last_used_at")


def token_record(token: ApiToken) -> dict[str, str | None]:
    """A new token as stored (never used yet)."""
    return {
        "name": token.name,
        "role": token.role.value,
        "sha256": token.sha256,
        "created_at": token.created_at.isoformat(),
        "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        "last_used_at": None,
    }


def token_from_record(record: Mapping[str, Any]) -> ApiToken:
    """A token read back from the fields of `token_record` (and its later `last_used_at`)."""

    def when(value: Any) -> datetime | None:
        return datetime.fromisoformat(value) if isinstance(value, str) and value else None

    return ApiToken(
        name=str(record["name"]),
        role=Role(record["role"]),
        sha256=str(record["sha256"]),
        created_at=datetime.fromisoformat(record["created_at"]),
        expires_at=when(record.get("expires_at")),
        last_used_at=when(record.get("last_used_at")),
    )
