"""One store contract suite, run against every store.

SQLite always; ArangoDB when `ARANGO_TEST_URL` names a server (`make test-arango` starts one with
Docker). Every ArangoDB test session works in a database of its own, dropped at the end.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
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
    asyncio.run(_drop_database(target))


async def _drop_database(target: ArangoTarget) -> None:
    from arangoasync import ArangoClient
    from arangoasync.auth import Auth

    async with ArangoClient(hosts=target.url) as client:
        sys_db = await client.db("_system", auth=Auth(target.user, target.password))
        await sys_db.delete_database(target.database, ignore_missing=True)


async def _truncate(target: ArangoTarget) -> None:
    from arangoasync import ArangoClient
    from arangoasync.auth import Auth

    from queue_manager.adapters.arango_store import (
        ENDED_SESSIONS_COLLECTION,
        EVENTS_COLLECTION,
        KEYS_COLLECTION,
        LOCKS_COLLECTION,
        QUEUE_COLLECTION,
        RUNS_COLLECTION,
        SCHEDULES_COLLECTION,
        TOKENS_COLLECTION,
    )

    async with ArangoClient(hosts=target.url) as client:
        db = await client.db(target.database, auth=Auth(target.user, target.password))
        for name in (
            QUEUE_COLLECTION,
            KEYS_COLLECTION,
            TOKENS_COLLECTION,
            EVENTS_COLLECTION,
            LOCKS_COLLECTION,
            SCHEDULES_COLLECTION,
            RUNS_COLLECTION,
            ENDED_SESSIONS_COLLECTION,
        ):
            await db.collection(name).truncate()


async def _arango_heartbeats(target: ArangoTarget) -> int:
    from arangoasync import ArangoClient
    from arangoasync.auth import Auth

    from queue_manager.adapters.arango_store import LOCKS_COLLECTION

    async with ArangoClient(hosts=target.url) as client:
        db = await client.db(target.database, auth=Auth(target.user, target.password))
        doc = await db.collection(LOCKS_COLLECTION).get("heartbeat")
    return int(doc["n"]) if doc else 0


@dataclass
class Backend:
    """Opens stores on one backing storage; a second instance plays another replica."""

    kind: str
    sqlite_path: Path | None = None
    arango: ArangoTarget | None = None
    opened: list[Store] = field(default_factory=list)

    def new(self) -> Store:
        if self.kind == "sqlite":
            assert self.sqlite_path is not None
            return SQLiteStore(self.sqlite_path)
        from queue_manager.adapters.arango_store import ArangoStore

        assert self.arango is not None
        return ArangoStore(
            self.arango.url, self.arango.database, self.arango.user, self.arango.password
        )

    async def open(self) -> Store:
        store = self.new()
        await store.open()
        self.opened.append(store)
        return store

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
        for store in b.opened:
            await store.close()


@pytest.fixture
async def store(backend: Backend) -> Store:
    return backend.opened[0]
