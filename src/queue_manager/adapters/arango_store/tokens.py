"""The identity half of the ArangoDB store. TokenStore: one document per token, keyed by name,
with a unique index on the SHA-256 so a lookup by hash is one index probe. SessionStore: one
document per logged-out session, keyed by its id, indexed by when it would have ended."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from queue_manager.adapters.arango_store import queries
from queue_manager.adapters.arango_store.queries import (
    ENDED_SESSIONS_COLLECTION,
    TOKENS_COLLECTION,
)
from queue_manager.domain.identity import ApiToken, Role


class TokenMethods:
    """Mixed into ArangoStore, which provides `_query`."""

    async def _query(self, action: str, query: str, bind_vars: dict[str, Any]) -> list[Any]:
        raise NotImplementedError

    async def put_token(self, token: ApiToken) -> bool:
        doc = {
            "_key": token.name,
            "role": token.role.value,
            "sha256": token.sha256,
            "created_at": token.created_at.isoformat(),
            "expires_at": token.expires_at.isoformat() if token.expires_at else None,
            "last_used_at": None,
        }
        bind = {"@coll": TOKENS_COLLECTION, "doc": doc}
        return bool(await self._query("create token", queries.TOKEN_INSERT, bind))

    async def token_by_hash(self, sha256: str) -> ApiToken | None:
        bind = {"@coll": TOKENS_COLLECTION, "sha256": sha256}
        rows = await self._query("read token", queries.TOKEN_BY_HASH, bind)
        return _token(rows[0]) if rows else None

    async def list_tokens(self) -> list[ApiToken]:
        rows = await self._query("list tokens", queries.TOKENS, {"@coll": TOKENS_COLLECTION})
        return [_token(row) for row in rows]

    async def delete_token(self, name: str) -> bool:
        bind = {"@coll": TOKENS_COLLECTION, "name": name}
        return bool(await self._query("revoke token", queries.TOKEN_DELETE, bind))

    async def touch_token(self, name: str, at: datetime) -> None:
        bind = {"@coll": TOKENS_COLLECTION, "name": name, "at": at.isoformat()}
        await self._query("record token use", queries.TOKEN_TOUCH, bind)

    async def end_session(self, session_id: str, until: datetime, now: datetime) -> None:
        doc = {"_key": session_id, "until": until.timestamp()}
        bind: dict[str, Any] = {"@coll": ENDED_SESSIONS_COLLECTION, "doc": doc}
        await self._query("record a logout", queries.SESSION_END, bind)
        # Sessions past their own end are refused by their age: their records can go.
        bind = {"@coll": ENDED_SESSIONS_COLLECTION, "now": now.timestamp()}
        await self._query("forget old logouts", queries.SESSIONS_PURGE, bind)

    async def ended_sessions(self, now: datetime) -> set[str]:
        bind = {"@coll": ENDED_SESSIONS_COLLECTION, "now": now.timestamp()}
        rows = await self._query("list logouts", queries.SESSIONS_ENDED, bind)
        return {str(key) for key in rows}


def _token(doc: dict[str, Any]) -> ApiToken:
    def when(value: Any) -> datetime | None:
        return datetime.fromisoformat(value) if isinstance(value, str) else None

    return ApiToken(
        name=str(doc["_key"]),
        role=Role(doc["role"]),
        sha256=str(doc["sha256"]),
        created_at=datetime.fromisoformat(doc["created_at"]),
        expires_at=when(doc.get("expires_at")),
        last_used_at=when(doc.get("last_used_at")),
    )
