"""Bench-only variants of the service: the real `create_app` given a subclass of SQLiteStore.

`uvicorn --factory bench.stores:no_history_app` (P9) serves the service with a store whose
history append is a no-op; `bench.stores:counting_app` (P10) with a store that times its
admission transactions and counts their SQL statements, written to
`<DATA_DIR>/store-stats.json` when the service shuts down. Nothing here is imported by src/.
"""

from __future__ import annotations

import contextvars
import json
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite
from fastapi import FastAPI

from queue_manager.adapters.sqlite_store import SQLiteStore
from queue_manager.domain.history import QueueEvent
from queue_manager.domain.models import QueueState

Mutate = Callable[[QueueState], list[QueueEvent] | None]


def _drop(mutate: Mutate) -> Mutate:
    """The same change, reporting no history event (`[]` still means "changed")."""

    def wrapped(queue: QueueState) -> list[QueueEvent] | None:
        return None if mutate(queue) is None else []

    return wrapped


class NoHistoryStore(SQLiteStore):
    """SQLiteStore that never appends to `queue_events`: every write path hands the adapter an
    empty event list, so neither the events' serialisation nor their INSERTs happen. The
    documents, their versions and the events' numbering in the document are unchanged."""

    async def insert(
        self, queue: QueueState, idempotency_key: str | None, events: Sequence[QueueEvent] = ()
    ) -> tuple[QueueState, bool]:
        return await super().insert(queue, idempotency_key, ())

    async def update_many(self, changes: Mapping[str, Mutate]) -> dict[str, QueueState | None]:
        return await super().update_many({q: _drop(m) for q, m in changes.items()})

    async def admit(
        self, limit: int | None, admit: Callable[[QueueState], list[QueueEvent]]
    ) -> list[QueueState]:
        return await super().admit(limit, lambda q: (admit(q), [])[1])

    async def update_parent(
        self,
        parent_id: str,
        mutate: Callable[[QueueState, list[QueueState]], list[QueueEvent] | None],
    ) -> QueueState | None:
        def wrapped(parent: QueueState, children: list[QueueState]) -> list[QueueEvent] | None:
            return None if mutate(parent, children) is None else []

        return await super().update_parent(parent_id, wrapped)

    async def claim(
        self,
        queue_id: str,
        targets: Collection[str],
        mutate: Callable[[QueueState, Mapping[str, int]], list[QueueEvent] | None],
    ) -> QueueState | None:
        def wrapped(queue: QueueState, running: Mapping[str, int]) -> list[QueueEvent] | None:
            return None if mutate(queue, running) is None else []

        return await super().claim(queue_id, targets, wrapped)


_ADMITTING: contextvars.ContextVar[bool] = contextvars.ContextVar("admitting", default=False)


class CountingStore(SQLiteStore):
    """SQLiteStore that measures `admit`: calls, queues admitted, the time its transaction holds
    the write lock (BEGIN IMMEDIATE acquired to COMMIT done) and the SQL statements it runs
    (sqlite3's trace callback on the writer connection: one per statement executed, each row of
    an executemany counted, BEGIN and COMMIT included)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stats = {"admit_calls": 0, "admitted": 0, "admit_seconds": 0.0,
                      "admit_statements": 0, "admit_empty_calls": 0}  # fmt: skip
        self._inside = False

    async def open(self) -> None:
        await super().open()
        writer, _ = self._conns()

        def trace(_sql: str) -> None:
            if self._inside:
                self.stats["admit_statements"] += 1

        await writer.set_trace_callback(trace)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        if not _ADMITTING.get():
            async with super()._transaction() as writer:
                yield writer
            return
        # the write lock is ours from here on: only admission's statements run on the writer
        self._inside = True
        self.stats["admit_statements"] += 1  # the BEGIN IMMEDIATE that super() ran
        began = time.perf_counter()
        try:
            async with super()._transaction() as writer:
                began = time.perf_counter()
                yield writer
        finally:
            self.stats["admit_seconds"] += time.perf_counter() - began
            self._inside = False

    async def admit(
        self, limit: int | None, admit: Callable[[QueueState], list[QueueEvent]]
    ) -> list[QueueState]:
        token = _ADMITTING.set(True)
        try:
            admitted = await super().admit(limit, admit)
        finally:
            _ADMITTING.reset(token)
        self.stats["admit_calls"] += 1
        self.stats["admitted"] += len(admitted)
        self.stats["admit_empty_calls"] += not admitted
        return admitted

    async def close(self) -> None:
        (self._path.parent / "store-stats.json").write_text(json.dumps(self.stats))
        await super().close()


def _app(store: type[SQLiteStore]) -> FastAPI:
    from queue_manager.api.worker_auth import WorkerTokens
    from queue_manager.app import build_adapters, create_app
    from queue_manager.settings import Settings, StoreBackend

    settings = Settings()
    if settings.resolved_store is not StoreBackend.SQLITE:
        raise SystemExit("bench.stores: only for the SQLite store")
    # The same worker-token secret create_app uses (the file it would read or create).
    if settings.worker_token_secret is not None:
        tokens = WorkerTokens(settings.worker_token_secret.get_secret_value().encode())
    else:
        tokens = WorkerTokens.from_file(settings.data_dir / "worker-token.secret")
    adapters = build_adapters(settings, tokens)
    adapters.store = store(settings.sqlite_file)
    return create_app(settings, adapters)


def no_history_app() -> FastAPI:
    return _app(NoHistoryStore)


def counting_app() -> FastAPI:
    return _app(CountingStore)
