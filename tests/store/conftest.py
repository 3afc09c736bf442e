"""One store contract suite, run against every store.

SQLite always; ArangoDB when `ARANGO_TEST_URL` names a server, or a cluster's coordinators
separated by commas (`make test-arango` starts either with Docker). Every ArangoDB test session
works in a database of its own, dropped at the end.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from queue_manager.adapters.sqlite_store import SQLiteStore
from queue_manager.ports import Store

ARANGO_SKIP_REASON = (
    "ARANGO_TEST_URL not set: no ArangoDB server on this machine; "
    "run `make test-arango` where Docker runs"
)


@dataclass(frozen=True)
class ArangoTarget:
    url: str
    user: str
    password: str
    database: str

    @property
    def hosts(self) -> list[str]:
        return [host.strip() for host in self.url.split(",") if host.strip()]

    def elsewhere(self) -> ArangoTarget:
        """The same server, another database (dropped with this one's session)."""
        return ArangoTarget(self.url, self.user, self.password, f"{self.database}_{_suffix()}")


def _suffix() -> str:
    return uuid.uuid4().hex[:8]


def _arango_env() -> tuple[str, str, str] | None:
    url = os.environ.get("ARANGO_TEST_URL")
    if not url:
        return None
    return (
        url,
        os.environ.get("ARANGO_TEST_USER", "root"),
        os.environ.get("ARANGO_TEST_PASSWORD", ""),
    )


@pytest.fixture(scope="session")
def arango_target() -> Iterator[ArangoTarget]:
    env = _arango_env()
    if env is None:
        pytest.skip(ARANGO_SKIP_REASON)
    url, user, password = env
    target = ArangoTarget(url, user, password, f"qm_test_{uuid.uuid4().hex[:12]}")
    yield target
    asyncio.run(_drop_databases(target))


async def _drop_databases(target: ArangoTarget) -> None:
    """This session's database and every one made `elsewhere` from it."""
    from arangoasync import ArangoClient
    from arangoasync.auth import Auth

    async with ArangoClient(hosts=target.hosts) as client:
        sys_db = await client.db("_system", auth=Auth(target.user, target.password))
        for name in await sys_db.databases():
            if name.startswith(target.database):
                await sys_db.delete_database(name, ignore_missing=True)


async def _truncate(target: ArangoTarget) -> None:
    from arangoasync import ArangoClient
    from arangoasync.auth import Auth

    from queue_manager.adapters.arango_store import queries

    async with ArangoClient(hosts=target.hosts) as client:
        db = await client.db(target.database, auth=Auth(target.user, target.password))
        # the fixed lock documents too: each test starts as a first use would
        for name in queries.COLLECTIONS:
            await db.collection(name).truncate()


async def _arango_heartbeats(target: ArangoTarget) -> int:
    from arangoasync import ArangoClient
    from arangoasync.auth import Auth

    from queue_manager.adapters.arango_store import LOCKS_COLLECTION

    async with ArangoClient(hosts=target.hosts) as client:
        db = await client.db(target.database, auth=Auth(target.user, target.password))
        doc = await db.collection(LOCKS_COLLECTION).get("heartbeat")
    return int(doc["n"]) if doc else 0


@asynccontextmanager
async def _arango_history_held(target: ArangoTarget, queue_id: str) -> AsyncIterator[None]:
    """Another writer holds the queue's history: a stream transaction that has rewritten one of
    its events and neither commits nor aborts until the block ends."""
    from arangoasync import ArangoClient
    from arangoasync.auth import Auth

    from queue_manager.adapters.arango_store import EVENTS_COLLECTION

    async with ArangoClient(hosts=target.hosts[:1]) as client:
        db = await client.db(target.database, auth=Auth(target.user, target.password))
        txn = await db.begin_transaction(write=[EVENTS_COLLECTION])
        try:
            cursor = await txn.aql.execute(
                "FOR d IN @@coll FILTER d.queue_id == @queue_id LIMIT 1 "
                "UPDATE d WITH { held: true } IN @@coll RETURN NEW._key",
                bind_vars={"@coll": EVENTS_COLLECTION, "queue_id": queue_id},
            )
            async with cursor:
                assert [key async for key in cursor], "the queue has no history to hold"
            yield
        finally:
            await txn.abort_transaction()


@dataclass
class Backend:
    """Opens stores on one backing storage; a second instance plays another replica."""

    kind: str
    sqlite_path: Path | None = None
    arango: ArangoTarget | None = None
    opened: list[Store] = field(default_factory=list)

    def new(self, *, max_attempts: int | None = None) -> Store:
        """A store on this storage; `max_attempts` bounds how long ArangoDB's retries wait on
        contention (SQLite waits on its busy timeout instead)."""
        if self.kind == "sqlite":
            assert self.sqlite_path is not None
            return SQLiteStore(self.sqlite_path)
        from queue_manager.adapters.arango_store import ArangoStore

        assert self.arango is not None
        more = {} if max_attempts is None else {"max_attempts": max_attempts}
        return ArangoStore(
            self.arango.url, self.arango.database, self.arango.user, self.arango.password, **more
        )

    async def open(self, *, max_attempts: int | None = None) -> Store:
        store = self.new(max_attempts=max_attempts)
        await store.open()
        self.opened.append(store)
        return store

    async def close(self) -> None:
        for store in self.opened:
            await store.close()

    def fresh(self) -> Backend:
        """Storage never opened yet (a new file, a new database); `close` it after use."""
        if self.kind == "sqlite":
            assert self.sqlite_path is not None
            return Backend("sqlite", sqlite_path=self.sqlite_path.with_name(f"{_suffix()}.db"))
        assert self.arango is not None
        return Backend("arango", arango=self.arango.elsewhere())

    @asynccontextmanager
    async def history_held(self, queue_id: str) -> AsyncIterator[None]:
        """A real fault for whoever deletes this queue's history meanwhile: SQLite refuses it
        (a trigger in the file), in ArangoDB another transaction holds one of its events."""
        if self.kind == "arango":
            assert self.arango is not None
            async with _arango_history_held(self.arango, queue_id):
                yield
            return
        assert self.sqlite_path is not None
        with sqlite3.connect(self.sqlite_path) as conn:
            conn.execute(
                "CREATE TRIGGER history_held BEFORE DELETE ON queue_events "
                f"WHEN old.queue_id = '{queue_id}' "
                "BEGIN SELECT RAISE(ABORT, 'history held by another writer'); END"
            )
        try:
            yield
        finally:
            with sqlite3.connect(self.sqlite_path) as conn:
                conn.execute("DROP TRIGGER history_held")

    async def raw_document(self, queue_id: str) -> dict[str, Any] | None:
        """The stored document as the database holds it, read around the adapter's API."""
        if self.kind == "sqlite":
            import orjson

            assert self.sqlite_path is not None
            with sqlite3.connect(self.sqlite_path) as conn:
                row = conn.execute(
                    "SELECT doc FROM queue_state WHERE id = ?", (queue_id,)
                ).fetchone()
            return orjson.loads(row[0]) if row else None
        from queue_manager.adapters.arango_store import ArangoStore

        store = self.opened[0]
        assert isinstance(store, ArangoStore)
        return await store.raw_document(queue_id)

    async def heartbeats(self) -> int:
        """How many writes the readiness pings made, as the database holds them."""
        if self.kind == "sqlite":
            assert self.sqlite_path is not None
            with sqlite3.connect(self.sqlite_path) as conn:
                row = conn.execute("SELECT n FROM store_heartbeat WHERE id = 1").fetchone()
            return int(row[0]) if row else 0
        assert self.arango is not None
        return await _arango_heartbeats(self.arango)


@pytest.fixture(params=["sqlite", "arango"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        b = Backend("sqlite", sqlite_path=tmp_path / "store.db")
    else:
        # skips (the suite's only skip) when no server is configured, with the reason
        target: ArangoTarget = request.getfixturevalue("arango_target")
        b = Backend("arango", arango=target)
    first = await b.open()  # bootstraps the schema
    if b.kind == "arango":
        assert b.arango is not None
        await _truncate(b.arango)
    del first
    try:
        yield b
    finally:
        await b.close()


@pytest.fixture
async def store(backend: Backend) -> Store:
    return backend.opened[0]
