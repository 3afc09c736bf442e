"""The ArangoDB StateStore: documents and listings.

One document per queue in `queue_state` (docs/api.md), `_key` = queue id, holding the same JSON as
the SQLite store's `doc` column plus the list helper `created` (fixed-width UTC text, see
`cursor.sort_key`). Several replicas may write at once:

* `update_many` is optimistic, document by document: it reads the document with its `_rev`,
  applies `mutate`, and replaces it only if the revision is unchanged (`If-Match`); on a
  conflict (HTTP 412) it reads again and re-applies `mutate`, so no replica ever overwrites
  another's write. Writers of one process
  also take turns per queue, which keeps conflicts to the ones between replicas. A change
  with history events is replaced and its events inserted in one stream transaction
  (`queue_events`, unique on queue id + seq); a progress tick is a single replace.
* an idempotency key is a document of `queue_idempotency` whose `_key` is the key's SHA-256:
  the primary index makes it unique, and a stream transaction stores it with the queue, so a
  retried start can never create a second queue.
* listings are keyset pages over persistent indexes (`created`, `_key`), with optional equality
  prefixes `status` / `symbol` / `parent` (a backfill's children): no OFFSET, no full count,
  fast at any depth.

Slightly over our usual ~350 lines: the StateStore methods share the connection, the per-queue
locks and the retry loop, and splitting them further would only pass those around.

Every AQL text comes from `queries` (constants, values through bind parameters); every driver or
network error leaves through `errors` as `DependencyUnavailable("store", ...)`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import aiohttp
from arangoasync import ArangoClient
from arangoasync.auth import Auth
from arangoasync.exceptions import ArangoError, ArangoServerError, DocumentRevisionError
from arangoasync.http import AioHTTPClient

from queue_manager.adapters import cursor as cursors
from queue_manager.adapters.arango_store import documents, queries
from queue_manager.adapters.arango_store.admission import AdmissionMethods
from queue_manager.adapters.arango_store.bootstrap import create_collections, create_database
from queue_manager.adapters.arango_store.errors import (
    ERR_CONFLICT,
    ERR_DATABASE_NOT_FOUND,
    ERR_DOCUMENT_NOT_FOUND,
    ERR_UNIQUE,
    ErrorScrubber,
    Rejected,
    server_codes,
)
from queue_manager.adapters.arango_store.queries import (
    EVENTS_COLLECTION,
    KEYS_COLLECTION,
    QUEUE_COLLECTION,
)
from queue_manager.adapters.arango_store.schedules import ScheduleMethods
from queue_manager.adapters.arango_store.tokens import TokenMethods
from queue_manager.domain.errors import DependencyUnavailable, Misconfigured
from queue_manager.domain.history import QueueEvent
from queue_manager.domain.models import ACTIVE_QUEUE_STATUSES, QueueState, QueueStatus
from queue_manager.ports import Page

if TYPE_CHECKING:
    from queue_manager.settings import Settings

_PARALLEL_UPDATES: Final = 16
_INSERT_COLLECTIONS: Final = [QUEUE_COLLECTION, KEYS_COLLECTION, EVENTS_COLLECTION]


class ArangoStore(TokenMethods, AdmissionMethods, ScheduleMethods):
    name = "arango"

    def __init__(
        self,
        url: str,
        database: str = "streamforge",
        username: str = "root",
        password: str = "",
        *,
        request_timeout: float = 30.0,
        connect_timeout: float = 5.0,
        max_attempts: int = 100,
    ) -> None:
        self._hosts = [part.strip() for part in url.split(",") if part.strip()]
        self._database = database
        self._username = username
        self._password = password
        self._request_timeout = request_timeout
        self._connect_timeout = connect_timeout
        self._max_attempts = max_attempts
        self._client: Any = None
        self._db: Any = None
        # In-process writers of one queue take turns; replicas are handled by `_rev`.
        self._queue_locks: dict[str, asyncio.Lock] = {}
        self._queue_waiters: dict[str, int] = {}
        self._admission_lock = asyncio.Lock()
        self._errors = ErrorScrubber(username, password, database)
        self._guard = self._errors.guard

    @classmethod
    def from_settings(cls, settings: Settings) -> ArangoStore:
        if not settings.arango_url:
            raise Misconfigured("ARANGO_URL: required with STORE_BACKEND=arango")
        password = settings.arango_password
        return cls(
            settings.arango_url,
            settings.arango_db,
            settings.arango_user,
            password.get_secret_value() if password is not None else "",
        )

    def __repr__(self) -> str:  # never shows the password
        return f"<ArangoStore {','.join(self._hosts)} db={self._database} user={self._username}>"

    @property
    def database(self) -> str:
        return self._database

    def _require(self) -> Any:
        if self._db is None:
            raise DependencyUnavailable("store", "not open")
        return self._db

    # -- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        if not self._hosts:
            raise DependencyUnavailable("store", "ARANGO_URL names no host")
        auth = Auth(username=self._username, password=self._password)
        http = AioHTTPClient(
            timeout=aiohttp.ClientTimeout(
                total=self._request_timeout, sock_connect=self._connect_timeout
            )
        )
        target = f"ArangoDB at {','.join(self._hosts)}"
        try:
            async with self._guard(f"cannot connect to {target}"):
                try:
                    self._client = ArangoClient(hosts=self._hosts, http_client=http)
                except ValueError as exc:  # e.g. an URL aiohttp cannot use
                    raise DependencyUnavailable(
                        "store", self._errors.scrub(f"ARANGO_URL: {exc}")
                    ) from None
                await create_database(await self._client.db("_system", auth=auth), self._database)
                db = await self._client.db(self._database, auth=auth)
                try:
                    await db.version()
                except ArangoServerError as exc:
                    http_code, err = server_codes(exc)
                    if err == ERR_DATABASE_NOT_FOUND or http_code == 404:
                        raise DependencyUnavailable(
                            "store",
                            f"database '{self._database}' does not exist on {target} and user "
                            f"'{self._username}' may not create it: create it or set ARANGO_DB",
                        ) from None
                    raise
                await create_collections(db)
                self._db = db
        except Rejected as exc:
            await self.close()
            # Waiting will not fix a wrong password: start-up stops with this one line.
            raise Misconfigured(exc.detail) from None
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        client, self._client, self._db = self._client, None, None
        if client is not None:
            with suppress(ArangoError, aiohttp.ClientError, OSError):
                await client.close()

    async def ping(self) -> None:
        """Proves the database takes writes (docs/operations.md#health): upserts the heartbeat
        document `queue_locks/heartbeat` (a read passes on a server in read-only mode, or for a
        user with read-only access). A write-write conflict with another replica's heartbeat
        proves it as well."""
        db = self._require()
        query, bind_vars = queries.heartbeat()
        async with self._guard("ping: heartbeat write"):
            try:
                async with await db.aql.execute(query, bind_vars=bind_vars) as cur:
                    async for _ in cur:
                        pass
            except ArangoServerError as exc:
                if server_codes(exc)[1] != ERR_CONFLICT:
                    raise

    # -- documents ------------------------------------------------------------------------

    async def insert(
        self, queue: QueueState, idempotency_key: str | None, events: Sequence[QueueEvent] = ()
    ) -> tuple[QueueState, bool]:
        db = self._require()
        doc = documents.document(queue)
        key_doc = None
        if idempotency_key is not None:
            key_doc = {
                "_key": documents.idempotency_key(idempotency_key),
                "key": idempotency_key,
                "queue_id": queue.id,
            }
        for attempt in range(self._max_attempts):
            if key_doc is not None:
                existing = await self._by_idempotency_key(key_doc["_key"])
                if existing is not None:
                    return existing, False
            async with self._guard(f"insert queue {queue.id}"):
                txn = await db.begin_transaction(write=_INSERT_COLLECTIONS)
                key_stored = key_doc is None
                try:
                    if key_doc is not None:
                        await txn.collection(KEYS_COLLECTION).insert(key_doc, silent=True)
                        key_stored = True
                    await txn.collection(QUEUE_COLLECTION).insert(doc, silent=True)
                    await self._insert_events(txn, queue.id, events)
                    await txn.commit_transaction()
                    return queue, True
                except ArangoServerError as exc:
                    await self._abort(txn)
                    contended = server_codes(exc)[1] in (ERR_UNIQUE, ERR_CONFLICT)
                    if key_stored or not contended:  # the queue itself failed: not the key
                        raise
                except BaseException:
                    await self._abort(txn)
                    raise
            # Another request holds the key (maybe not committed yet): read it again.
            await self._backoff(attempt)
        raise DependencyUnavailable(
            "store", f"idempotency key still contended after {self._max_attempts} attempts"
        )

    @staticmethod
    async def _insert_events(txn: Any, queue_id: str, events: Sequence[QueueEvent]) -> None:
        if not events:
            return
        rows = [event.model_dump(mode="json") for event in events]
        query, bind = queries.events_insert(queue_id, rows)
        async with await txn.aql.execute(query, bind_vars=bind) as cursor:
            async for _ in cursor:
                pass

    async def _by_idempotency_key(self, doc_key: str) -> QueueState | None:
        db = self._require()
        async with self._guard("read idempotency key"):
            found = await db.collection(KEYS_COLLECTION).get(doc_key)
        if found is None:
            return None
        return await self.get(str(found["queue_id"]))

    @staticmethod
    async def _abort(txn: Any) -> None:
        # On failure the server expires the abandoned stream transaction by itself.
        with suppress(ArangoError, aiohttp.ClientError, OSError):
            await txn.abort_transaction()

    async def get(self, queue_id: str) -> QueueState | None:
        raw = await self.raw_document(queue_id)
        return documents.load(raw) if raw is not None else None

    async def raw_document(self, queue_id: str) -> dict[str, Any] | None:
        """The stored document as ArangoDB holds it (with `_key`, `_rev`, `created`)."""
        db = self._require()
        if not documents.valid_key(queue_id):
            return None  # not a key ArangoDB could hold (and never a path to another collection)
        async with self._guard(f"read queue {queue_id}"):
            raw = await db.collection(QUEUE_COLLECTION).get(queue_id)
        return dict(raw) if raw is not None else None

    async def _update_one(
        self, queue_id: str, mutate: Callable[[QueueState], list[QueueEvent] | None]
    ) -> QueueState | None:
        db = self._require()
        if not documents.valid_key(queue_id):
            return None
        coll = db.collection(QUEUE_COLLECTION)
        async with self._queue_lock(queue_id):
            for attempt in range(self._max_attempts):
                async with self._guard(f"read queue {queue_id}"):
                    raw = await coll.get(queue_id)
                if raw is None:
                    return None
                queue = documents.load(raw)
                events = mutate(queue)  # domain code: its errors are not the store's
                if events is None:
                    return queue
                async with self._guard(f"update queue {queue_id}"):
                    try:
                        await self._replace(queue, raw["_rev"], events)
                    except DocumentRevisionError:
                        pass  # another replica wrote first: re-read and re-apply
                    except ArangoServerError as exc:
                        err = server_codes(exc)[1]
                        if err == ERR_DOCUMENT_NOT_FOUND:
                            return None
                        if err != ERR_CONFLICT:  # a write-write conflict is retried too
                            raise
                    else:
                        return queue
                await self._backoff(attempt)
        raise DependencyUnavailable(
            "store", f"queue {queue_id} still contended after {self._max_attempts} attempts"
        )

    async def _replace(self, queue: QueueState, rev: str, events: Sequence[QueueEvent]) -> None:
        """Replace the document if still at `rev`; with history, in one stream transaction."""
        db = self._require()
        doc = documents.document(queue)
        if not events:  # a progress tick: one request, no transaction
            await db.collection(QUEUE_COLLECTION).replace(doc, if_match=rev, silent=True)
            return
        txn = await db.begin_transaction(write=[QUEUE_COLLECTION, EVENTS_COLLECTION])
        try:
            await txn.collection(QUEUE_COLLECTION).replace(doc, if_match=rev, silent=True)
            await self._insert_events(txn, queue.id, events)
            await txn.commit_transaction()
        except BaseException:
            await self._abort(txn)
            raise

    async def update_many(
        self, changes: Mapping[str, Callable[[QueueState], list[QueueEvent] | None]]
    ) -> dict[str, QueueState | None]:
        # Documents are independent in ArangoDB: optimistic updates side by side, bounded.
        gate = asyncio.Semaphore(_PARALLEL_UPDATES)

        async def one(queue_id: str) -> QueueState | None:
            async with gate:
                return await self._update_one(queue_id, changes[queue_id])

        results = await asyncio.gather(*(one(queue_id) for queue_id in changes))
        return dict(zip(changes, results, strict=True))

    async def get_json(self, queue_id: str) -> bytes | None:
        queue = await self.get(queue_id)
        return queue.model_dump_json().encode() if queue is not None else None

    @asynccontextmanager
    async def _queue_lock(self, queue_id: str) -> AsyncIterator[None]:
        lock = self._queue_locks.setdefault(queue_id, asyncio.Lock())
        self._queue_waiters[queue_id] = self._queue_waiters.get(queue_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            left = self._queue_waiters[queue_id] - 1
            if left:
                self._queue_waiters[queue_id] = left
            else:
                del self._queue_waiters[queue_id]
                del self._queue_locks[queue_id]

    @staticmethod
    async def _backoff(attempt: int) -> None:
        await asyncio.sleep(random.uniform(0, min(0.1, 0.002 * 2 ** min(attempt, 6))))

    # -- queries --------------------------------------------------------------------------

    async def _query(self, action: str, query: str, bind_vars: dict[str, Any]) -> list[Any]:
        db = self._require()
        async with self._guard(action), await db.aql.execute(query, bind_vars=bind_vars) as cur:
            return [row async for row in cur]

    async def page(
        self,
        *,
        status: QueueStatus | None,
        symbol: str | None,
        limit: int,
        cursor: str | None,
        parent: str | None = None,
    ) -> Page:
        # One more row than asked tells whether a next page exists.
        query, bind = queries.page(
            status=status.value if status is not None else None,
            symbol=symbol,
            limit=limit + 1,
            after=cursors.decode(cursor) if cursor is not None else None,
            parent=parent,
        )
        rows = await self._query("list queues", query, bind)
        items = [documents.load(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit and limit > 0:
            last = rows[limit - 1]
            next_cursor = cursors.encode(str(last["created"]), str(last["_key"]))
        return Page(items=items, next_cursor=next_cursor)

    async def delete_ended(self, before: datetime, limit: int) -> list[str]:
        ended = [s.value for s in QueueStatus if s.terminal]
        cutoff = int(before.timestamp() * 1000)
        query, bind = queries.delete_ended(ended, cursors.sort_key(before), cutoff, limit)
        ids = [str(key) for key in await self._query("prune queues", query, bind)]
        if ids:
            await self._query("prune idempotency keys", *queries.delete_keys_of(ids))
            await self._query("prune history", *queries.delete_events_of(ids))
            await self._query("prune recount locks", *queries.delete_parent_locks(ids))
        return ids

    async def events(self, queue_id: str, *, after: int, limit: int) -> list[QueueEvent]:
        query, bind = queries.events_of(queue_id, after, limit)
        rows = await self._query(f"read history of {queue_id}", query, bind)
        return [QueueEvent.model_validate(row) for row in rows]

    async def list_active(self) -> list[QueueState]:
        query, bind = queries.list_active([s.value for s in ACTIVE_QUEUE_STATUSES])
        rows = await self._query("list active queues", query, bind)
        return [documents.load(row) for row in rows]

    async def count_by_status(self) -> dict[str, int]:
        query, bind = queries.count_by_status()
        rows = await self._query("count queues", query, bind)
        return {str(status): int(n) for status, n in rows}
