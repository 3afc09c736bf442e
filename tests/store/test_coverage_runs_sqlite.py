"""The SQLite store's runs of the coverage ledger (adapters/sqlite_store/ledger_runs.py): built
at open for cells written without them, in batches; kept by every write; and a read of any range
answers what the cells there make, a run crossing either end clipped to its days inside."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite

from queue_manager.adapters.sqlite_store import SQLiteStore
from queue_manager.adapters.sqlite_store.ledger_runs import build_all, cells_of, run_row
from queue_manager.domain import coverage
from queue_manager.domain.coverage import STORED, CellRun
from queue_manager.domain.models import StepStatus
from tests.store.test_coverage_contract import TYPE, _end, _queue, _write

BASE = date(2024, 1, 1)
DAYS = 200
SYMBOLS = ["AAAUSDT", "BBBUSDT", "CCCUSDT"]
TYPES = [TYPE, "api_trades"]


def _seed(path: Path, rng: random.Random) -> int:
    """Cells straight into `coverage_cells`, as a release before the runs left them: runs of
    a state and producer with holes, records and instants different on every day."""
    rows = []
    for type_ in TYPES:
        for symbol in SYMBOLS:
            state, queue, step = rng.choice(STORED), "q1", 0
            for offset in range(DAYS):
                if rng.random() < 0.05:
                    continue
                if rng.random() < 0.1:
                    state = rng.choice(STORED)
                if rng.random() < 0.05:
                    queue = rng.choice(("q1", "q2"))
                day = BASE + timedelta(days=offset)
                first = None if rng.random() < 0.2 else f"{day}T{rng.randrange(10):02d}:00:00"
                last = None if rng.random() < 0.2 else f"{day}T{rng.randrange(10, 24)}:00:00"
                rows.append(
                    (
                        type_,
                        symbol,
                        day.toordinal(),
                        state.value,
                        rng.randrange(1000),
                        first,
                        last,
                        queue,
                        step,
                        "2024-01-01T00:00:00.000000",
                    )
                )
    with sqlite3.connect(path) as conn:
        conn.executemany("INSERT INTO coverage_cells VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return len(rows)


def _all_cells(path: Path) -> list[coverage.Cell]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT symbol, type, day, state, records, first, last, queue_id, step, created "
            "FROM coverage_cells ORDER BY type, symbol, day"
        ).fetchall()
    return cells_of(rows)


def _all_runs(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT type, symbol, start_day, end_day, state, records, first, last, queue_id, step "
            "FROM coverage_runs ORDER BY type, symbol, start_day"
        ).fetchall()


def _as_rows(runs: list[CellRun]) -> list[tuple[Any, ...]]:
    return [run_row(run) for run in runs]


async def _empty_store(path: Path) -> None:
    store = SQLiteStore(path)
    await store.open()
    await store.close()


async def test_runs_of_cells_written_without_them_are_built_at_open(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    await _empty_store(path)
    assert _seed(path, random.Random(7)) > 1000
    assert _all_runs(path) == []
    store = SQLiteStore(path)
    await store.open()  # builds them
    try:
        built = _all_runs(path)
        assert built == _as_rows(coverage.cell_runs(_all_cells(path)))
        assert len(built) > 100
        # any range reads what its cells make: runs crossing its ends clipped
        rng = random.Random(8)
        for _ in range(150):
            first = BASE + timedelta(days=rng.randrange(-5, DAYS))
            last = first + timedelta(days=rng.randrange(60))
            symbols = rng.sample(SYMBOLS, rng.randrange(1, 4))
            runs = await store.coverage_runs(symbols, TYPES, first, last)
            cells = await store.coverage_cells(symbols, TYPES, first, last)
            assert runs == coverage.cell_runs(cells), (symbols, first, last)
    finally:
        await store.close()
    # a store opened again builds nothing more; built in small batches, the same runs
    await _empty_store(path)
    assert _all_runs(path) == built
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        await conn.execute("BEGIN IMMEDIATE")
        await conn.execute("DELETE FROM coverage_runs")
        assert await build_all(conn, batch=7) == len(built)
        await conn.execute("COMMIT")
    assert _all_runs(path) == built


async def test_every_write_keeps_the_runs_its_cells_make(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SQLiteStore(path)
    await store.open()
    rng = random.Random(11)
    try:
        written = []
        for n in range(80):
            first = BASE + timedelta(days=rng.randrange(40))
            queue = _queue(
                first,
                first + timedelta(days=rng.randrange(10)),
                symbol=rng.choice(SYMBOLS),
                created=datetime(2024, 6, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(500)),
            )
            await store.insert(queue, None)
            written.append(queue)
            # one written earlier ends, or runs again (its own cells replaced)
            again = rng.choice(written)
            fate = rng.random()
            if fate < 0.5:
                _end(again, 0, StepStatus.FINISHED, records_written=rng.randrange(5000))
            elif fate < 0.8:
                reached = again.start_time + timedelta(hours=rng.randrange(1, 200))
                _end(again, 0, StepStatus.ERROR, last_loaded_timestamp=reached)
            else:
                again.retries += 1
            await _write(store, again)
            assert _all_runs(path) == _as_rows(coverage.cell_runs(_all_cells(path))), n
    finally:
        await store.close()
