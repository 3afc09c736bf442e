"""The coverage-ledger part of the SQLite store (docs/coverage.md).

Cells are rows keyed (type, symbol, day) — the day as its proleptic ordinal, so a year of one
symbol is one range of the primary key. `write_ledger` runs inside the transaction of every
queue write (`queues.insert_new` / `write_changes`): a crash never leaves the ledger and the
queues disagreeing. Each queue's fingerprint (`coverage_sources`) is read with the batch, so
a progress tick that changes no cell writes nothing. The ledger's runs (`coverage_runs`,
ledger_runs.py) are made again for the days a write touched, in its transaction; a read takes the
runs, cutting those crossing its range to their days inside. Its SQL lives here, beside the rows it
reads, rather than in `queries` (the part is one module, like its ArangoDB twin).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, Final

import aiosqlite
import orjson

from queue_manager.adapters.sqlite_store import documents
from queue_manager.adapters.sqlite_store.connection import Access
from queue_manager.adapters.sqlite_store.ledger_runs import cells_of, rebuild
from queue_manager.adapters.sqlite_store.queries import CHUNK, marks
from queue_manager.domain import coverage
from queue_manager.domain.coverage import Cell, CellRun, CellState, ExpectedGap, Tally
from queue_manager.domain.models import QueueState

_SOURCES_OF: Final = "SELECT queue_id, fp FROM coverage_sources WHERE queue_id IN ({})"
_PUT_SOURCE: Final = (
    "INSERT INTO coverage_sources (queue_id, fp) VALUES (?, ?) "
    "ON CONFLICT (queue_id) DO UPDATE SET fp = excluded.fp"
)
#: a queue's own cells of a type, before its new ones are written (a stream stopped by hand
#: leaves the days it never reached without a cell)
_DROP_OWN: Final = (
    "DELETE FROM coverage_cells WHERE type = ? AND symbol = ? AND day BETWEEN ? AND ? "
    "AND queue_id = ?"
)
#: domain.coverage.wins, in SQL: the same queue's word, else complete first, then the newer
_UPSERT: Final = (
    "INSERT INTO coverage_cells "
    "(type, symbol, day, state, records, first, last, queue_id, step, created) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (type, symbol, day) DO UPDATE SET state = excluded.state, "
    "records = excluded.records, first = excluded.first, last = excluded.last, "
    "queue_id = excluded.queue_id, step = excluded.step, created = excluded.created "
    "WHERE excluded.queue_id = coverage_cells.queue_id "
    "OR (excluded.state = 'complete', excluded.created, excluded.queue_id) "
    "> (coverage_cells.state = 'complete', coverage_cells.created, coverage_cells.queue_id)"
)
#: per symbol (?4...: the values of `s`), its runs with days in ?2..?3: those starting there, and
#: the one holding ?2 (the latest starting at or before it, one seek per symbol). CROSS JOIN
#: keeps `s` outside: from some hundreds of symbols on, SQLite's planner would otherwise scan
#: every run of the type once per symbol (0.5 s rather than 15 ms for 500 symbols over 3 years)
_RUNS_IN: Final = (
    "WITH s(symbol) AS (VALUES {{}}) "
    "SELECT {columns} FROM s CROSS JOIN coverage_runs r ON r.type = ?1 AND r.symbol = s.symbol "
    "AND r.start_day BETWEEN COALESCE((SELECT MAX(p.start_day) FROM coverage_runs p "
    "WHERE p.type = ?1 AND p.symbol = s.symbol AND p.start_day <= ?2), ?2) AND ?3 "
    "WHERE r.end_day >= ?2{where} ORDER BY r.symbol, r.start_day"
)
RUNS: Final = _RUNS_IN.format(
    columns="r.symbol, r.start_day, r.end_day, r.state, r.records, r.first, r.last, r.queue_id, "
    "r.step",
    where="",
)
#: the complete and running runs only: the days a fill leaves alone
SETTLED: Final = _RUNS_IN.format(
    columns="r.symbol, r.start_day, r.end_day",
    where=" AND r.state IN ('complete', 'running')",
)
#: per run crossing the read's range (w: its key, symbol, the days to add up slo..shi, its first
#: day inside the range lo, and lo..lhi, where to look for the last instant): the records of
#: slo..shi, the first instant of lo, the last instant of lo..lhi (the latest day that has one):
#: domain.coverage.tally in SQL, over only the runs that need it
TALLIES: Final = (
    "WITH w(k, symbol, slo, shi, lo, lhi) AS (VALUES {}) "
    "SELECT w.k, "
    "(SELECT COALESCE(SUM(c.records), 0) FROM coverage_cells c WHERE c.type = ?1 "
    "AND c.symbol = w.symbol AND c.day BETWEEN w.slo AND w.shi), "
    "(SELECT c.first FROM coverage_cells c WHERE c.type = ?1 AND c.symbol = w.symbol "
    "AND c.day = w.lo), "
    "(SELECT c.last FROM coverage_cells c WHERE c.type = ?1 AND c.symbol = w.symbol "
    "AND c.day BETWEEN w.lo AND w.lhi AND c.last IS NOT NULL AND c.last != '' "
    "ORDER BY c.day DESC LIMIT 1) "
    "FROM w"
)
_CELLS: Final = (
    "SELECT symbol, type, day, state, records, first, last, queue_id, step, created "
    "FROM coverage_cells WHERE type = ? AND symbol IN ({}) AND day BETWEEN ? AND ? "
    "ORDER BY symbol, day"
)
#: distinct symbols of a type from the primary key, one seek each (a loose index scan)
_SYMBOLS: Final = (
    "WITH RECURSIVE s(symbol, n) AS ("
    " SELECT MIN(symbol), 1 FROM coverage_cells WHERE type = ?1"
    " UNION ALL SELECT (SELECT MIN(symbol) FROM coverage_cells WHERE type = ?1"
    " AND symbol > s.symbol), n + 1 FROM s WHERE s.symbol IS NOT NULL AND n < ?2"
    ") SELECT symbol FROM s WHERE symbol IS NOT NULL"
)
#: from the runs, which hold every cell once: a few thousand rows rather than millions of cells
_COUNTS: Final = (
    "SELECT type, state, SUM(end_day - start_day + 1) FROM coverage_runs GROUP BY type, state"
)
_QUEUES_AFTER: Final = "SELECT id, doc FROM queue_state WHERE id > ? ORDER BY id LIMIT ?"
_META: Final = "SELECT value FROM coverage_meta WHERE key = ?"
_PUT_META: Final = (
    "INSERT INTO coverage_meta (key, value) VALUES (?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
_GAPS: Final = "SELECT doc FROM expected_gaps ORDER BY name"
_GAP: Final = "SELECT 1 FROM expected_gaps WHERE name = ?"
_PUT_GAP: Final = (
    "INSERT INTO expected_gaps (name, doc) VALUES (?, ?) "
    "ON CONFLICT (name) DO UPDATE SET doc = excluded.doc"
)
_DROP_GAP: Final = "DELETE FROM expected_gaps WHERE name = ?"
_DERIVED: Final = "derived"

_STATES: Final = {state.value: state for state in CellState}


def cell_row(cell: Cell) -> tuple[Any, ...]:
    return (
        cell.type,
        cell.symbol,
        cell.day.toordinal(),
        cell.state.value,
        cell.records,
        cell.first,
        cell.last,
        cell.queue_id,
        cell.step,
        cell.created,
    )


async def write_ledger(writer: aiosqlite.Connection, queues: Sequence[QueueState]) -> None:
    """The cells of `queues` whose fingerprint changed, in the caller's transaction."""
    sourced = [queue for queue in queues if queue.steps]
    if not sourced:
        return
    held: dict[str, str] = {}
    for start in range(0, len(sourced), CHUNK):
        ids = [queue.id for queue in sourced[start : start + CHUNK]]
        rows: Any = await writer.execute_fetchall(_SOURCES_OF.format(marks(len(ids))), ids)
        held.update((str(queue_id), str(fp)) for queue_id, fp in rows)
    drops: list[tuple[Any, ...]] = []
    cells: list[tuple[Any, ...]] = []
    sources: list[tuple[str, str]] = []
    for queue in sourced:
        fp = coverage.fingerprint(queue)
        if held.get(queue.id) == fp:
            continue
        sources.append((queue.id, fp))
        first = queue.start_time.date().toordinal()
        last = min(queue.end_time.date().toordinal(), first + coverage.MAX_QUEUE_DAYS - 1)
        for step in coverage.producing_steps(queue):
            drops.append((step.type, queue.symbol, first, last, queue.id))
        cells += [cell_row(cell) for cell in coverage.queue_cells(queue)]
    if not sources:
        return
    await writer.executemany(_DROP_OWN, drops)
    await writer.executemany(_UPSERT, cells)
    await writer.executemany(_PUT_SOURCE, sources)
    # the runs of the days written, in the same transaction as the cells
    touched: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for type_, symbol, first, last, _ in drops:
        touched.setdefault((type_, symbol), []).append((first, last))
    await rebuild(writer, touched)


class Coverage:
    def __init__(self, db: Access) -> None:
        self._db = db

    async def coverage_cells(
        self, symbols: Sequence[str], types: Sequence[str], first: date, last: date
    ) -> list[Cell]:
        found: list[Cell] = []
        low, high = first.toordinal(), last.toordinal()
        for type_ in types:
            for start in range(0, len(symbols), CHUNK):
                some = list(symbols[start : start + CHUNK])
                sql = _CELLS.format(marks(len(some)))
                rows = await self._db.read(sql, (type_, *some, low, high))
                found += cells_of(rows)
        return found

    async def coverage_runs(
        self, symbols: Sequence[str], types: Sequence[str], first: date, last: date
    ) -> list[CellRun]:
        found: list[CellRun] = []
        low, high = first.toordinal(), last.toordinal()
        states, to_day = _STATES, date.fromordinal
        symbols = list(dict.fromkeys(symbols))  # one row of `s` each: a symbol's runs once
        for type_ in types:
            runs: list[CellRun] = []
            for start in range(0, len(symbols), CHUNK):
                some = list(symbols[start : start + CHUNK])
                values = ", ".join(f"(?{i})" for i in range(4, 4 + len(some)))
                rows = await self._db.read(RUNS.format(values), (type_, low, high, *some))
                runs += [
                    CellRun(s, type_, to_day(a), to_day(b), states[st], n, f, t, q, i)
                    for s, a, b, st, n, f, t, q, i in rows
                ]
            crossing = [at for at, run in enumerate(runs) if run.start < first or run.end > last]
            tallies = await self._tallies(type_, [runs[at] for at in crossing], low, high)
            for at, tally in zip(crossing, tallies, strict=True):
                runs[at] = coverage.clip(runs[at], first, last, tally)
            found += runs
        return found

    async def _tallies(
        self, type_: str, runs: Sequence[CellRun], low: int, high: int
    ) -> list[Tally]:
        """The tally of each run's days inside low..high, from its cells: the records added up
        over the fewer days, inside or (taken from the run's) outside; the last instant looked
        for only in a run that has one."""
        out: list[Tally] = []
        for start in range(0, len(runs), CHUNK):
            some = runs[start : start + CHUNK]
            args: list[Any] = [type_]
            subtract: list[int | None] = []
            for k, run in enumerate(some):
                a, b = run.start.toordinal(), run.end.toordinal()
                lo, hi = max(a, low), min(b, high)
                slo, shi, minus = lo, hi, None
                if a < low and b <= high and low - a < hi - lo + 1:
                    slo, shi, minus = a, low - 1, run.records
                elif b > high and a >= low and b - high < hi - lo + 1:
                    slo, shi, minus = high + 1, b, run.records
                args += [k, run.symbol, slo, shi, lo, hi if run.last is not None else lo - 1]
                subtract.append(minus)
            values = ", ".join(
                "(" + ", ".join(f"?{2 + 6 * k + j}" for j in range(6)) + ")"
                for k in range(len(some))
            )
            rows = await self._db.read(TALLIES.format(values), tuple(args))
            by_key = {int(k): (int(n), f, t) for k, n, f, t in rows}
            for k in range(len(some)):
                n, head, tail = by_key[k]
                minus = subtract[k]
                out.append((minus - n if minus is not None else n, head, tail))
        return out

    async def coverage_settled(
        self, symbols: Sequence[str], types: Sequence[str], first: date, last: date
    ) -> list[tuple[str, str, date, date]]:
        # The complete and running runs, clipped to the range and joined where they touch (a
        # run ends where its producer changes; a fill cares only that the day is settled).
        found: list[tuple[str, str, date, date]] = []
        low, high = first.toordinal(), last.toordinal()
        to_day = date.fromordinal
        symbols = list(dict.fromkeys(symbols))
        for type_ in types:
            for start in range(0, len(symbols), CHUNK):
                some = symbols[start : start + CHUNK]
                values = ", ".join(f"(?{i})" for i in range(4, 4 + len(some)))
                rows = await self._db.read(SETTLED.format(values), (type_, low, high, *some))
                held: tuple[str, int, int] | None = None
                for symbol, a, b in rows:
                    a, b = max(a, low), min(b, high)
                    if held is not None and held[0] == symbol and held[2] + 1 == a:
                        held = (symbol, held[1], b)
                        continue
                    if held is not None:
                        found.append((held[0], type_, to_day(held[1]), to_day(held[2])))
                    held = (symbol, a, b)
                if held is not None:
                    found.append((held[0], type_, to_day(held[1]), to_day(held[2])))
        return found

    async def coverage_symbols(self, type_: str, limit: int) -> list[str]:
        rows = await self._db.read(_SYMBOLS, (type_, limit))
        return [str(row[0]) for row in rows]

    async def coverage_counts(self) -> dict[tuple[str, str], int]:
        rows = await self._db.read(_COUNTS, ())
        return {(str(t), str(s)): int(n) for t, s, n in rows}

    async def derive_coverage(self, after: str | None, limit: int) -> str | None:
        async with self._db.transaction() as writer:
            rows: Any = await writer.execute_fetchall(_QUEUES_AFTER, (after or "", limit))
            if not rows:
                return None
            await write_ledger(writer, [documents.load(doc) for _, doc in rows])
        return str(rows[-1][0])

    async def coverage_derived(self) -> bool:
        return bool(await self._db.read(_META, (_DERIVED,)))

    async def mark_coverage_derived(self) -> None:
        await self._db.write(_PUT_META, (_DERIVED, "1"))

    async def expected_gaps(self) -> list[ExpectedGap]:
        rows = await self._db.read(_GAPS, ())
        return [ExpectedGap.model_validate_json(row[0]) for row in rows]

    async def put_expected_gap(self, gap: ExpectedGap) -> bool:
        async with self._db.transaction() as writer:
            existing: Any = await writer.execute_fetchall(_GAP, (gap.name,))
            await writer.execute(_PUT_GAP, (gap.name, orjson.dumps(gap.as_dict())))
        return not existing

    async def delete_expected_gap(self, name: str) -> bool:
        return await self._db.write(_DROP_GAP, (name,)) > 0
