"""The production store: ArangoDB, on a single server or a cluster (docs/operations.md#arangodb).

Made of the parts every store is made of (`adapters.store_parts`); this module connects, makes
sure the schema is there (`bootstrap`), proves the database takes writes, and hands each part
the one `connection.Database` they share. Every AQL text comes from `queries` (constants,
values through bind parameters); every driver or network error leaves through `errors` as
`DependencyUnavailable("store", ...)`.
"""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING, Any

import aiohttp
from arangoasync.auth import Auth
from arangoasync.exceptions import ArangoError, ArangoServerError

from queue_manager.adapters.arango_store import queries
from queue_manager.adapters.arango_store.admission import Admission
from queue_manager.adapters.arango_store.bootstrap import create_collections, create_database
from queue_manager.adapters.arango_store.catalog import Catalog
from queue_manager.adapters.arango_store.client import make_client
from queue_manager.adapters.arango_store.connection import Database, rows
from queue_manager.adapters.arango_store.coverage import Coverage
from queue_manager.adapters.arango_store.errors import (
    ERR_CONFLICT,
    ERR_DATABASE_NOT_FOUND,
    ErrorScrubber,
    Rejected,
    server_codes,
)
from queue_manager.adapters.arango_store.queues import Queues
from queue_manager.adapters.arango_store.rate_limits import RateLimits
from queue_manager.adapters.arango_store.schedules import Schedules
from queue_manager.adapters.arango_store.sessions import Sessions
from queue_manager.adapters.arango_store.stats import Stats
from queue_manager.adapters.arango_store.tokens import Tokens
from queue_manager.adapters.store_parts import StoreParts
from queue_manager.domain.errors import DependencyUnavailable, Misconfigured

if TYPE_CHECKING:
    from queue_manager.settings import Settings


class ArangoStore(StoreParts):
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
        #: one URL, or the coordinators of a cluster separated by commas
        self._hosts = [part.strip() for part in url.split(",") if part.strip()]
        self._database = database
        self._username = username
        self._password = password
        self._request_timeout = request_timeout
        self._connect_timeout = connect_timeout
        self._client: Any = None
        self._errors = ErrorScrubber(username, password, database)
        self._db = Database(self._errors, max_attempts)
        self._queues = Queues(self._db)
        self.queues = self._queues
        self.admission = Admission(self._db)
        self.schedules = Schedules(self._db)
        self.tokens = Tokens(self._db)
        self.sessions = Sessions(self._db)
        self.rate_limits = RateLimits(self._db)
        self.coverage = Coverage(self._db)
        self.catalog = Catalog(self._db)
        self.stats = Stats(self._db)

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

    async def raw_document(self, queue_id: str) -> dict[str, Any] | None:
        """The stored document as ArangoDB holds it (with `_key`, `_rev`, `created`)."""
        return await self._queues.raw_document(queue_id)

    # -- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        if not self._hosts:
            raise DependencyUnavailable("store", "ARANGO_URL names no host")
        auth = Auth(username=self._username, password=self._password)
        target = f"ArangoDB at {','.join(self._hosts)}"
        try:
            async with self._db.guard(f"cannot connect to {target}"):
                try:
                    self._client = make_client(
                        self._hosts,
                        request_timeout=self._request_timeout,
                        connect_timeout=self._connect_timeout,
                    )
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
                self._db.handle = db
        except Rejected as exc:
            await self.close()
            # Waiting will not fix a wrong password: start-up stops with this one line.
            raise Misconfigured(exc.detail) from None
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        client, self._client, self._db.handle = self._client, None, None
        if client is not None:
            with suppress(ArangoError, aiohttp.ClientError, OSError):
                await client.close()

    async def ping(self) -> None:
        """Proves the database takes writes (docs/operations.md#health): upserts the heartbeat
        document `queue_locks/heartbeat` (a read passes on a server in read-only mode, or for a
        user with read-only access). A write-write conflict with another replica's heartbeat
        proves it as well."""
        db = self._db.require()
        async with self._db.guard("ping: heartbeat write"):
            try:
                await rows(db, queries.heartbeat())
            except ArangoServerError as exc:
                if server_codes(exc)[1] != ERR_CONFLICT:
                    raise
