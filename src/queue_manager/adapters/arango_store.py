"""Production state store: ArangoDB on the official async driver (`python-arango-async`).

One document per queue in `queue_state` (docs/api.md), `_key` = queue id, holding the same JSON as
the SQLite store's `doc` column plus the list helper `created` (fixed-width UTC text, see
`cursor.sort_key`). Several replicas may write at once:

* `update` is optimistic: it reads the document with its `_rev`, applies `mutate`, and replaces
  it only if the revision is unchanged (`If-Match`); on a conflict (HTTP 412) it reads again and
  re-applies `mutate`, so no replica ever overwrites another's write. Writers of one process
  also take turns per queue, which keeps conflicts to the ones between replicas.
* an idempotency key is a document of `queue_idempotency` whose `_key` is the key's SHA-256:
  the primary index makes it unique, and a stream transaction stores it with the queue, so a
  retried start can never create a second queue.
* listings are keyset pages over persistent indexes (`created`, `_key`), with optional equality
  prefixes `status` / `symbol`: no OFFSET, no full count, fast at any depth.

Every AQL text here is a constant that takes its values through bind parameters, collections
through `@@` parameters (tests/store/test_aql_bind_parameters.py checks it). Every driver or
network error leaves this module as `DependencyUnavailable("store", ...)`, never with a password.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any, Final

import aiohttp
from arangoasync import ArangoClient
from arangoasync.auth import Auth
from arangoasync.exceptions import ArangoError, ArangoServerError, DocumentRevisionError
from arangoasync.http import AioHTTPClient
from pydantic import ValidationError

from queue_manager.adapters import cursor as cursors
from queue_manager.domain.errors import DependencyUnavailable, DomainError, Misconfigured
from queue_manager.domain.models import ACTIVE_QUEUE_STATUSES, QueueState, QueueStatus
from queue_manager.ports import Page

if TYPE_CHECKING:
    from queue_manager.settings import Settings

QUEUE_COLLECTION: Final = "queue_state"
KEYS_COLLECTION: Final = "queue_idempotency"

# ArangoDB error numbers (arangoasync.errno) and HTTP codes this adapter reacts to.
_ERR_CONFLICT: Final = 1200  # write-write conflict (two transactions on one key)
_ERR_DUPLICATE_NAME: Final = 1207  # collection / database created concurrently
_ERR_UNIQUE: Final = 1210  # unique constraint violated (key already used)
_ERR_DATABASE_NOT_FOUND: Final = 1228
_ERR_DOCUMENT_NOT_FOUND: Final = 1202
_PARALLEL_UPDATES: Final = 16
_HTTP_UNAUTHORIZED: Final = 401
_HTTP_FORBIDDEN: Final = 403

#: attributes the store adds around QueueState's JSON; stripped when loading
_STORE_FIELDS: Final = frozenset({"_key", "_id", "_rev", "created"})

#: what ArangoDB accepts as a document key; anything else cannot name a stored queue
_VALID_KEY = re.compile(r"^[A-Za-z0-9_\-:.@()+,=;$!*'%]{1,254}$")

# persistent indexes: (name, fields). Each serves one list filter plus the newest-first sort.
INDEXES: Final[tuple[tuple[str, list[str]], ...]] = (
    ("queue_state_created", ["created", "_key"]),
    ("queue_state_status", ["status", "created", "_key"]),
    ("queue_state_symbol", ["symbol", "created", "_key"]),
)

# -- AQL: constants only, values through bind parameters --------------------------------------
# Keyset pagination: `created <= @created` is the index range; the second condition drops the
# rows of the same instant already returned (ties broken by `_key`), so no OFFSET is needed.
_PAGE = """
FOR d IN @@coll
  SORT d.created DESC, d._key DESC
  LIMIT @limit
  RETURN d
"""
_PAGE_AFTER = """
FOR d IN @@coll
  FILTER d.created <= @created
  FILTER d.created < @created OR d._key < @key
  SORT d.created DESC, d._key DESC
  LIMIT @limit
  RETURN d
"""
_PAGE_STATUS = """
FOR d IN @@coll
  FILTER d.status == @status
  SORT d.created DESC, d._key DESC
  LIMIT @limit
  RETURN d
"""
_PAGE_STATUS_AFTER = """
FOR d IN @@coll
  FILTER d.status == @status
  FILTER d.created <= @created
  FILTER d.created < @created OR d._key < @key
  SORT d.created DESC, d._key DESC
  LIMIT @limit
  RETURN d
"""
_PAGE_SYMBOL = """
FOR d IN @@coll
  FILTER d.symbol == @symbol
  SORT d.created DESC, d._key DESC
  LIMIT @limit
  RETURN d
"""
_PAGE_SYMBOL_AFTER = """
FOR d IN @@coll
  FILTER d.symbol == @symbol
  FILTER d.created <= @created
  FILTER d.created < @created OR d._key < @key
  SORT d.created DESC, d._key DESC
  LIMIT @limit
  RETURN d
"""
_PAGE_BOTH = """
FOR d IN @@coll
  FILTER d.status == @status AND d.symbol == @symbol
  SORT d.created DESC, d._key DESC
  LIMIT @limit
  RETURN d
"""
_PAGE_BOTH_AFTER = """
FOR d IN @@coll
  FILTER d.status == @status AND d.symbol == @symbol
  FILTER d.created <= @created
  FILTER d.created < @created OR d._key < @key
  SORT d.created DESC, d._key DESC
  LIMIT @limit
  RETURN d
"""
#: (filter by status, filter by symbol, after a cursor) -> query
_PAGE_QUERIES: Final[dict[tuple[bool, bool, bool], str]] = {
    (False, False, False): _PAGE,
    (False, False, True): _PAGE_AFTER,
    (True, False, False): _PAGE_STATUS,
    (True, False, True): _PAGE_STATUS_AFTER,
    (False, True, False): _PAGE_SYMBOL,
    (False, True, True): _PAGE_SYMBOL_AFTER,
    (True, True, False): _PAGE_BOTH,
    (True, True, True): _PAGE_BOTH_AFTER,
}
_LIST_ACTIVE = """
FOR d IN @@coll
  FILTER d.status IN @statuses
  RETURN d
"""
_COUNT_BY_STATUS = """
FOR d IN @@coll
  COLLECT status = d.status WITH COUNT INTO n
  RETURN [status, n]
"""
_PING = "RETURN 1"


def _document(queue: QueueState) -> dict[str, Any]:
    doc: dict[str, Any] = queue.model_dump(mode="json")
    doc["_key"] = queue.id
    doc["created"] = cursors.sort_key(queue.created_at)
    return doc


def _load(doc: dict[str, Any]) -> QueueState:
    fields = {k: v for k, v in doc.items() if k not in _STORE_FIELDS}
    try:
        return QueueState.model_validate(fields)
    except ValidationError as exc:
        key = doc.get("_key")
        raise DependencyUnavailable(
            "store", f"document {key} in {QUEUE_COLLECTION} is not a valid queue: {exc}"
        ) from exc


def _idempotency_key(key: str) -> str:
    """Any client string -> a valid, fixed-length document key."""
    return hashlib.sha256(key.encode()).hexdigest()


def _server_codes(exc: BaseException) -> tuple[int | None, int | None]:
    """(HTTP status, ArangoDB errorNum) of a server error, else (None, None)."""
    if isinstance(exc, ArangoServerError):
        http = getattr(exc, "http_code", None)
        err = getattr(exc, "error_code", None)
        return (http if isinstance(http, int) else None, err if isinstance(err, int) else None)
    return None, None


class _Rejected(DependencyUnavailable):
    """The server refused our credentials."""


class ArangoStore:
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

    @classmethod
    def from_settings(cls, settings: Settings) -> ArangoStore:
        if not settings.arango_url:
            raise DependencyUnavailable("store", "ARANGO_URL is not set")
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

    # -- errors ---------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        if self._password:
            text = text.replace(self._password, "***")
        # credentials embedded in a URL (http://user:pass@host)
        return re.sub(r"(\w+://)[^/@\s]+@", r"\1***@", text)

    def _unavailable(self, action: str, exc: BaseException) -> DependencyUnavailable:
        detail = str(exc) or type(exc).__name__
        http, _ = _server_codes(exc)
        if http in (_HTTP_UNAUTHORIZED, _HTTP_FORBIDDEN):
            detail = (
                f"ArangoDB rejected user '{self._username}' on database '{self._database}' "
                f"(HTTP {http}): check ARANGO_USER / ARANGO_PASSWORD and the user's access"
            )
            return _Rejected("store", self._scrub(f"{action}: {detail}"))
        return DependencyUnavailable("store", self._scrub(f"{action}: {detail}"))

    @asynccontextmanager
    async def _guard(self, action: str) -> AsyncIterator[None]:
        """Every third-party failure inside becomes DependencyUnavailable("store")."""
        try:
            yield
        except DomainError:
            raise
        except (ArangoError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise self._unavailable(action, exc) from None

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
                        "store", self._scrub(f"ARANGO_URL: {exc}")
                    ) from None
                await self._create_database(auth)
                db = await self._client.db(self._database, auth=auth)
                try:
                    await db.version()
                except ArangoServerError as exc:
                    http_code, err = _server_codes(exc)
                    if err == _ERR_DATABASE_NOT_FOUND or http_code == 404:
                        raise DependencyUnavailable(
                            "store",
                            f"database '{self._database}' does not exist on {target} and user "
                            f"'{self._username}' may not create it: create it or set ARANGO_DB",
                        ) from None
                    raise
                await self._bootstrap(db)
                self._db = db
        except _Rejected as exc:
            await self.close()
            # Waiting will not fix a wrong password: start-up stops with this one line.
            raise Misconfigured(exc.detail) from None
        except BaseException:
            await self.close()
            raise

    async def _create_database(self, auth: Auth) -> None:
        """Create the database from `_system` when this user may; otherwise assume it exists."""
        sys_db = await self._client.db("_system", auth=auth)
        try:
            if not await sys_db.has_database(self._database):
                await sys_db.create_database(self._database)
        except ArangoServerError as exc:
            http, err = _server_codes(exc)
            if http in (_HTTP_UNAUTHORIZED, _HTTP_FORBIDDEN) or err == _ERR_DUPLICATE_NAME:
                return  # no rights on _system (checked again on the database) or a race
            raise

    async def _bootstrap(self, db: Any) -> None:
        for name in (QUEUE_COLLECTION, KEYS_COLLECTION):
            if not await db.has_collection(name):
                try:
                    await db.create_collection(name)
                except ArangoServerError as exc:
                    if _server_codes(exc)[1] != _ERR_DUPLICATE_NAME:  # another replica won
                        raise
        coll = db.collection(QUEUE_COLLECTION)
        for index_name, fields in INDEXES:
            # Creating an index that exists with the same definition returns the existing one.
            await coll.add_index(
                type="persistent",
                fields=fields,
                options={"name": index_name, "unique": False, "sparse": False},
            )

    async def close(self) -> None:
        client, self._client, self._db = self._client, None, None
        if client is not None:
            with suppress(ArangoError, aiohttp.ClientError, OSError):
                await client.close()

    async def ping(self) -> None:
        db = self._require()
        async with self._guard("ping"), await db.aql.execute(_PING) as cur:
            async for _ in cur:
                pass

    # -- documents ------------------------------------------------------------------------

    async def insert(
        self, queue: QueueState, idempotency_key: str | None
    ) -> tuple[QueueState, bool]:
        db = self._require()
        doc = _document(queue)
        if idempotency_key is None:
            async with self._guard(f"insert queue {queue.id}"):
                await db.collection(QUEUE_COLLECTION).insert(doc, silent=True)
            return queue, True
        key_doc = {
            "_key": _idempotency_key(idempotency_key),
            "key": idempotency_key,
            "queue_id": queue.id,
        }
        for attempt in range(self._max_attempts):
            existing = await self._by_idempotency_key(key_doc["_key"])
            if existing is not None:
                return existing, False
            async with self._guard(f"insert queue {queue.id}"):
                txn = await db.begin_transaction(write=[QUEUE_COLLECTION, KEYS_COLLECTION])
                key_stored = False
                try:
                    await txn.collection(KEYS_COLLECTION).insert(key_doc, silent=True)
                    key_stored = True
                    await txn.collection(QUEUE_COLLECTION).insert(doc, silent=True)
                    await txn.commit_transaction()
                    return queue, True
                except ArangoServerError as exc:
                    await self._abort(txn)
                    contended = _server_codes(exc)[1] in (_ERR_UNIQUE, _ERR_CONFLICT)
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
        return _load(raw) if raw is not None else None

    async def raw_document(self, queue_id: str) -> dict[str, Any] | None:
        """The stored document as ArangoDB holds it (with `_key`, `_rev`, `created`)."""
        db = self._require()
        if not _VALID_KEY.match(queue_id):
            return None  # not a key ArangoDB could hold (and never a path to another collection)
        async with self._guard(f"read queue {queue_id}"):
            raw = await db.collection(QUEUE_COLLECTION).get(queue_id)
        return dict(raw) if raw is not None else None

    async def _update_one(
        self, queue_id: str, mutate: Callable[[QueueState], bool]
    ) -> QueueState | None:
        db = self._require()
        if not _VALID_KEY.match(queue_id):
            return None
        coll = db.collection(QUEUE_COLLECTION)
        async with self._queue_lock(queue_id):
            for attempt in range(self._max_attempts):
                async with self._guard(f"read queue {queue_id}"):
                    raw = await coll.get(queue_id)
                if raw is None:
                    return None
                queue = _load(raw)
                if not mutate(queue):  # domain code: its errors are not the store's
                    return queue
                async with self._guard(f"update queue {queue_id}"):
                    try:
                        await coll.replace(_document(queue), if_match=raw["_rev"], silent=True)
                    except DocumentRevisionError:
                        pass  # another replica wrote first: re-read and re-apply
                    except ArangoServerError as exc:
                        err = _server_codes(exc)[1]
                        if err == _ERR_DOCUMENT_NOT_FOUND:
                            return None
                        if err != _ERR_CONFLICT:  # a write-write conflict is retried too
                            raise
                    else:
                        return queue
                await self._backoff(attempt)
        raise DependencyUnavailable(
            "store", f"queue {queue_id} still contended after {self._max_attempts} attempts"
        )

    async def update_many(
        self, changes: Mapping[str, Callable[[QueueState], bool]]
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
    ) -> Page:
        bind: dict[str, Any] = {"@coll": QUEUE_COLLECTION, "limit": limit + 1}
        if status is not None:
            bind["status"] = status.value
        if symbol is not None:
            bind["symbol"] = symbol
        if cursor is not None:
            bind["created"], bind["key"] = cursors.decode(cursor)
        query = _PAGE_QUERIES[(status is not None, symbol is not None, cursor is not None)]
        rows = await self._query("list queues", query, bind)
        items = [_load(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit and limit > 0:
            last = rows[limit - 1]
            next_cursor = cursors.encode(str(last["created"]), str(last["_key"]))
        return Page(items=items, next_cursor=next_cursor)

    async def list_active(self) -> list[QueueState]:
        rows = await self._query(
            "list active queues",
            _LIST_ACTIVE,
            {"@coll": QUEUE_COLLECTION, "statuses": [s.value for s in ACTIVE_QUEUE_STATUSES]},
        )
        return [_load(row) for row in rows]

    async def count_by_status(self) -> dict[str, int]:
        rows = await self._query("count queues", _COUNT_BY_STATUS, {"@coll": QUEUE_COLLECTION})
        return {str(status): int(n) for status, n in rows}
