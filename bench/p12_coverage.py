"""P12 — coverage ledger: 1,000 symbols x 4 types x 1,096 days (4.4 million cells; quick: 100
symbols, 438,400 cells), 99 % complete and 1 % failed at random, seeded straight into the
SQLite file's `coverage_cells` (the store's own table and indexes), as a release before the
ledger's runs left them; the store's next open builds the runs (timed on its own). Through the
real app in-process (create_app, httpx ASGI transport): `GET /coverage` for 100 symbols x one
type x 366 days, p50 of 20 calls; fill planning (`POST /coverage/fill` dry run) over the whole
ledger. Each beside the same question as raw SQL on the same file (python's sqlite3: the store's
runs query and its clip of the runs crossing the range's ends; its settled-runs query), without
building the answer. The coverage view's first render in Chromium on that ledger
(bench/coverage_view.py). Also the upgrade derivation: queues written as the previous release did,
derived by the store part, queues per second.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import statistics
import time
from datetime import UTC, date, datetime, timedelta

import httpx

from bench import coverage_view
from bench.config import Config
from bench.report import Row

TYPES = ["api_candles_5m", "api_candles_1m", "api_trades", "api_depth"]
FIRST = date(2022, 1, 1)
DAYS = 1096


def seed(path, symbols: list[str]) -> int:
    from queue_manager.adapters.sqlite_store import SQLiteStore

    async def schema() -> None:
        store = SQLiteStore(path)
        await store.open()
        await store.close()

    asyncio.run(schema())
    rng = random.Random(12)
    base = FIRST.toordinal()
    created = "2025-01-01T00:00:00.000000"
    with sqlite3.connect(path) as conn:
        for type_ in TYPES:
            rows = []
            for symbol in symbols:
                queue = f"q-{symbol}-{type_}"
                for d in range(DAYS):
                    state = "failed" if rng.random() < 0.01 else "complete"
                    row = (type_, symbol, base + d, state, 288, None, None, queue, 0, created)
                    rows.append(row)
            conn.executemany(
                "INSERT INTO coverage_cells VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
    return len(symbols) * len(TYPES) * DAYS


def build_runs(path) -> tuple[float, int]:
    """The runs of the seeded cells, made by the store's own open (ledger_runs.build_all, for
    a file with cells and no runs): seconds, and the runs made."""
    from queue_manager.adapters.sqlite_store import SQLiteStore

    async def go() -> float:
        store = SQLiteStore(path)
        began = time.perf_counter()
        await store.open()
        took = time.perf_counter() - began
        await store.close()
        return took

    took = asyncio.run(go())
    with sqlite3.connect(path) as conn:
        (runs,) = conn.execute("SELECT COUNT(*) FROM coverage_runs").fetchone()
    return took, int(runs)


def raw_read(path, symbols: list[str], type_: str, first: int, last: int) -> float:
    """The store's read (adapters/sqlite_store/coverage.py) as raw SQL: the runs with days in
    the range, then the tally of the days inside of those crossing either end."""
    from queue_manager.adapters.sqlite_store.coverage import RUNS, TALLIES

    values = ", ".join(f"(?{i})" for i in range(4, 4 + len(symbols)))
    with sqlite3.connect(path) as conn:
        began = time.perf_counter()
        runs = conn.execute(RUNS.format(values), (type_, first, last, *symbols)).fetchall()
        windows: list[object] = [type_]
        crossing = (r for r in runs if r[1] < first or r[2] > last)
        for k, (symbol, a, b, _, _, _, tail, *_) in enumerate(crossing):
            lo, hi = max(a, first), min(b, last)
            slo, shi = lo, hi  # the records of the fewer days, inside or outside, as the store
            if a < first and b <= last and first - a < hi - lo + 1:
                slo, shi = a, first - 1
            elif b > last and a >= first and b - last < hi - lo + 1:
                slo, shi = last + 1, b
            windows += [k, symbol, slo, shi, lo, hi if tail is not None else lo - 1]
        n = (len(windows) - 1) // 6
        if n:
            marks = ", ".join(
                "(" + ", ".join(f"?{2 + 6 * k + j}" for j in range(6)) + ")" for k in range(n)
            )
            conn.execute(TALLIES.format(marks), windows).fetchall()
        return time.perf_counter() - began


def raw_plan(path, symbols: list[str]) -> float:
    """The store's settled-runs query (adapters/sqlite_store/coverage.py SETTLED) as raw SQL:
    per type and batch of symbols, the complete and running runs with days in the range."""
    from queue_manager.adapters.sqlite_store.coverage import SETTLED
    from queue_manager.adapters.sqlite_store.queries import CHUNK

    low, high = FIRST.toordinal(), FIRST.toordinal() + DAYS - 1
    with sqlite3.connect(path) as conn:
        began = time.perf_counter()
        for type_ in TYPES:
            for start in range(0, len(symbols), CHUNK):
                some = symbols[start : start + CHUNK]
                values = ", ".join(f"(?{i})" for i in range(4, 4 + len(some)))
                conn.execute(SETTLED.format(values), (type_, low, high, *some)).fetchall()
        return time.perf_counter() - began


async def through_app(data_dir, symbols: list[str]) -> tuple[list[float], float, int]:
    from asgi_lifespan import LifespanManager

    from queue_manager.app import create_app
    from queue_manager.settings import Settings

    app = create_app(Settings(data_dir=data_dir, _env_file=None))
    async with LifespanManager(app, startup_timeout=120) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        client = httpx.AsyncClient(transport=transport, base_url="http://qm", timeout=120)
        async with client as http:
            params = {
                "symbol": symbols[:100],
                "type": TYPES[0],
                "from": "2023-01-01",
                "to": "2024-01-01",
            }
            reads = []
            for _ in range(21):
                began = time.perf_counter()
                answer = await http.get("/coverage", params=params)
                reads.append(time.perf_counter() - began)
                assert answer.status_code == 200, answer.text[:300]
            body = {
                "symbols": symbols,
                "types": TYPES,
                "chunk": "month",
                "dry_run": True,
                "time_range": f"{FIRST}:{FIRST + timedelta(days=DAYS - 1)}",
            }
            began = time.perf_counter()
            plan = await http.post("/coverage/fill", json=body)
            planned = time.perf_counter() - began
            assert plan.status_code == 200, plan.text[:300]
            return reads[1:], planned, len(plan.json()["data"]["chunks"])


def derivation(path, count: int) -> float:
    """Queues per second the store part derives (one-day queues, all finished)."""
    from queue_manager.adapters.sqlite_store import SQLiteStore, documents, queries
    from queue_manager.domain.models import LoaderType, QueueState, QueueStatus, Step, StepStatus

    queues = []
    for i in range(count):
        day = FIRST + timedelta(days=i % DAYS)
        qid = f"{i:032x}"
        queues.append(
            QueueState(
                id=qid,
                symbol=f"D{i % 500:03d}USDT",
                type=TYPES[0],
                status=QueueStatus.FINISHED,
                loader_type=LoaderType.JOB,
                time_range=f"{day}:{day}",
                start_time=datetime.combine(day, datetime.min.time(), UTC),
                end_time=datetime.combine(day, datetime.max.time(), UTC).replace(microsecond=0),
                steps=[
                    Step(
                        index=0,
                        target="loader-producer",
                        type=TYPES[0],
                        job_name=f"j{i}",
                        telemetry_id=f"{qid}-0",
                        status=StepStatus.FINISHED,
                        records_written=288,
                    )
                ],
            )
        )

    async def go() -> float:
        store = SQLiteStore(path)
        await store.open()
        await store.close()
        with sqlite3.connect(path) as conn:
            conn.executemany(queries.INSERT_QUEUE, [documents.queue_row(q) for q in queues])
        await store.open()
        try:
            began, after = time.perf_counter(), None
            while (after := await store.derive_coverage(after, 500)) is not None:
                pass
            return time.perf_counter() - began
        finally:
            await store.close()

    return count / asyncio.run(go())


def run(cfg: Config) -> list[Row]:
    symbols = [f"S{i:04d}USDT" for i in range(cfg.size(1000, 100))]
    data_dir = cfg.workdir / "p12"
    data_dir.mkdir(parents=True, exist_ok=True)
    db = data_dir / "queue-manager.db"
    cells = seed(db, symbols)
    built, runs = build_runs(db)
    reads, planned, chunks = asyncio.run(through_app(data_dir, symbols))
    first, last = date(2023, 1, 1).toordinal(), date(2024, 1, 1).toordinal()
    raw_reads = [raw_read(db, symbols[:100], TYPES[0], first, last) for _ in range(20)]
    raw = raw_plan(db, symbols)
    p50, raw_p50 = statistics.median(reads) * 1e3, statistics.median(raw_reads) * 1e3
    rate = derivation(cfg.workdir / "p12-derive.db", cfg.size(20_000, 5_000))
    view, view_one, view_note = coverage_view.first_render(
        cfg, db, symbols[:100], TYPES[0], "2023-01-01", "2024-01-01"
    )
    return [
        Row(
            f"P12 GET /coverage p50, 100 symbols x 1 type x 366 days, ledger of {cells:,} cells",
            p50,
            "ms",
            raw_p50,
            "raw SQL: the same runs query and clip",
            "<= 50 ms",
            p50 <= 50,
        ),
        Row(
            f"P12 the ledger's runs built at open from {cells:,} cells seeded without them "
            f"({runs:,} runs)",
            built,
            "s",
            note="once, at the first open after an upgrade",
        ),
        Row(
            f"P12 fill planning (dry run) over the whole ledger ({cells:,} cells, {chunks:,} "
            "chunks)",
            planned,
            "s",
            raw,
            "raw SQL: the settled-runs queries",
            "<= 2 s",
            planned <= 2,
        ),
        Row(
            "P12 coverage view first render in Chromium, 100 symbols x 1 type x 366 days",
            view,
            "ms",
            view_one,
            "the same view, one symbol",
            "<= 1 s",
            view is not None and view <= 1000,
            note=view_note,
        ),
        Row(
            "P12 upgrade derivation, queues/s (one-day finished queues)",
            rate,
            "queues/s",
            note=f"1,000,000 queues: ~{1e6 / rate / 60:.0f} min at this rate",
        ),
    ]
