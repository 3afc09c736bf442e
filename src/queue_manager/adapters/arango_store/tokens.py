"""The API tokens part of the ArangoDB store (TokenStore).

A token is its document, keyed by its name, plus its hash's document (`api_token_hashes`),
keyed by the SHA-256 and naming the token: both are written, and removed, in one stream
transaction, so either key already taken refuses the token — two tokens never share a hash,
through the primary index only (a cluster refuses a unique index on `sha256`). A lookup by hash
is one probe of the (non-unique) index on the token's `sha256`.

Listed in code-point order of the name, as SQLite lists them (BINARY collation); AQL's SORT
would use the server's ICU collation instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from arangoasync.exceptions import ArangoServerError

from queue_manager.adapters.arango_store import documents, queries
from queue_manager.adapters.arango_store.connection import Database, rows
from queue_manager.adapters.arango_store.errors import ERR_UNIQUE, server_codes
from queue_manager.adapters.arango_store.queries import TOKEN_HASHES_COLLECTION, TOKENS_COLLECTION
from queue_manager.domain.identity import ApiToken


class _Taken(Exception):
    """The token's name or hash is taken."""


class Tokens:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put_token(self, token: ApiToken) -> bool:
        doc, hash_doc = documents.token_documents(token)

        async def store(txn: Any) -> None:
            try:
                await txn.collection(TOKEN_HASHES_COLLECTION).insert(hash_doc, silent=True)
                await txn.collection(TOKENS_COLLECTION).insert(doc, silent=True)
            except ArangoServerError as exc:
                if server_codes(exc)[1] == ERR_UNIQUE:
                    raise _Taken from None
                raise

        try:
            await self._db.transaction("create token", queries.TOKEN_COLLECTIONS, store)
        except _Taken:
            return False
        return True

    async def token_by_hash(self, sha256: str) -> ApiToken | None:
        found = await self._db.query("read token", queries.token_by_hash(sha256))
        return documents.load_token(found[0]) if found else None

    async def list_tokens(self) -> list[ApiToken]:
        found = await self._db.query("list tokens", queries.tokens())
        return sorted((documents.load_token(row) for row in found), key=lambda t: t.name)

    async def delete_token(self, name: str) -> bool:
        async def delete(txn: Any) -> bool:
            removed = await rows(txn, queries.token_delete(name))
            for sha256 in removed:
                await rows(txn, queries.token_hash_delete(str(sha256)))
            return bool(removed)

        return await self._db.transaction("revoke token", queries.TOKEN_COLLECTIONS, delete)

    async def touch_token(self, name: str, at: datetime) -> None:
        await self._db.query("record token use", queries.token_touch(name, at.isoformat()))
