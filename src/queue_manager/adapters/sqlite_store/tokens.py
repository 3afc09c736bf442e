"""The API tokens part of the SQLite store (TokenStore): one row per token, its name the key
and its SHA-256 unique, so a lookup by hash is one index probe and names one token."""

from __future__ import annotations

from datetime import datetime

from queue_manager.adapters.sqlite_store import documents, queries
from queue_manager.adapters.sqlite_store.connection import Access
from queue_manager.domain.identity import ApiToken


class Tokens:
    def __init__(self, db: Access) -> None:
        self._db = db

    async def put_token(self, token: ApiToken) -> bool:
        return await self._db.write(queries.TOKEN_INSERT, documents.token_row(token)) == 1

    async def token_by_hash(self, sha256: str) -> ApiToken | None:
        rows = await self._db.read(queries.TOKEN_BY_HASH, (sha256,))
        return documents.load_token(rows[0]) if rows else None

    async def list_tokens(self) -> list[ApiToken]:
        return [documents.load_token(row) for row in await self._db.read(queries.TOKENS, ())]

    async def delete_token(self, name: str) -> bool:
        return await self._db.write(queries.TOKEN_DELETE, (name,)) == 1

    async def touch_token(self, name: str, at: datetime) -> None:
        await self._db.write(queries.TOKEN_TOUCH, (at.isoformat(), name))
