"""Acceptance 4 of the coverage ledger (docs/coverage.md): a store written by the previous
release (queues, no ledger) gets its ledger at start-up, in the background; derived again, the
cells are the same — and the same as the ledger the write path keeps for the same queues."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from queue_manager.adapters.sqlite_store import SQLiteStore, documents, queries
from queue_manager.adapters.sqlite_store.queues import insert_new
from queue_manager.app import create_app
from queue_manager.domain.models import QueueState, StepStatus
from queue_manager.settings import Settings
from tests.store.test_coverage_contract import TYPE, _end, _queue
from tests.support.waiting import wait_until_async

QUEUES = 10_000
SYMBOLS = [f"S{i:03d}USDT" for i in range(100)]


def _history(seed: int) -> list[QueueState]:
    """10,000 queues of 1 to 3 days over 2023, ended every way a queue ends."""
    rng = random.Random(seed)
    made = []
    for i in range(QUEUES):
        first = date(2023, 1, 1) + timedelta(days=rng.randrange(360))
        queue = _queue(
            first,
            first + timedelta(days=rng.randrange(3)),
            symbol=rng.choice(SYMBOLS),
            created=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=i),
        )
        fate = rng.random()
        if fate < 0.79:
            _end(queue, 0, StepStatus.FINISHED, records_written=rng.randrange(10_000))
        elif fate < 0.99:
            reached = datetime.combine(first, datetime.min.time(), UTC) + timedelta(
                hours=rng.randrange(1, 60)
            )
            _end(queue, 0, StepStatus.ERROR, last_loaded_timestamp=reached, records_written=7)
        # else: still running (a restart finds it running)
        made.append(queue)
    return made


def _as_previous_release(path: Path, queues: list[QueueState]) -> None:
    """The queue rows exactly as a release without the ledger wrote them."""
    with sqlite3.connect(path) as conn:
        conn.executemany(queries.INSERT_QUEUE, [documents.queue_row(q) for q in queues])


def _cells(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT * FROM coverage_cells ORDER BY type, symbol, day").fetchall()


@asynccontextmanager
async def _serving(data_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    # the queues left running are resumed at start-up: one real worker at a time is enough
    settings = Settings(data_dir=data_dir, max_running_jobs={"loader-producer": 1}, _env_file=None)
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://qm") as http:
            yield http


async def _derived(http: httpx.AsyncClient, data_dir: Path) -> float:
    """Waits for the start-up derivation; how long it took (s)."""
    began = time.monotonic()

    async def done() -> bool:
        with sqlite3.connect(data_dir / "queue-manager.db") as conn:
            return bool(
                conn.execute("SELECT 1 FROM coverage_meta WHERE key = 'derived'").fetchall()
            )

    await wait_until_async(done, 120, what="the start-up derivation")
    return time.monotonic() - began


async def test_a_store_of_the_previous_release_gets_its_ledger_at_start_up(tmp_path: Path) -> None:
    queues = _history(seed=31)
    # The same queues through today's write path: the ledger the derivation must give.
    live = SQLiteStore(tmp_path / "live.db")
    await live.open()
    try:
        # the insert path of every new queue, all in one transaction (10,000 commits are slow)
        async with live._transaction() as writer:
            await insert_new(writer, [(queue, []) for queue in queues])
    finally:
        await live.close()
    expected = _cells(tmp_path / "live.db")
    assert len(expected) > QUEUES

    data_dir = tmp_path / "upgraded"
    data_dir.mkdir()
    db = data_dir / "queue-manager.db"
    old = SQLiteStore(db)  # the schema (today's tables: the ledger's stay empty)
    await old.open()
    await old.close()
    _as_previous_release(db, queues)
    assert _cells(db) == []

    async with _serving(data_dir) as http:
        # ready at once: the derivation runs in the background
        ready = await http.get("/health/ready")
        assert ready.status_code == 200, ready.text
        took = await _derived(http, data_dir)
        answer = await http.get(
            "/coverage",
            params={"symbol": SYMBOLS[:3], "type": TYPE, "from": "2023-01-01", "to": "2023-12-31"},
        )
        assert answer.status_code == 200
        assert any(
            r["state"] == "complete" for row in answer.json()["data"]["rows"] for r in row["runs"]
        )
    first = _cells(db)
    assert first == expected
    print(f"derived {QUEUES} queues ({len(first)} cells) in {took:.2f} s")

    # Derived again from nothing held (a crash before the marker, fingerprints lost): the same.
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM coverage_meta")
        conn.execute("DELETE FROM coverage_sources")
    async with _serving(data_dir) as http:
        await _derived(http, data_dir)
    assert _cells(db) == first
