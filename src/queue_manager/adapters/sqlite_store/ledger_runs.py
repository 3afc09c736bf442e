"""The coverage ledger's runs in the SQLite store (docs/coverage.md): `coverage_runs` holds, per
(type, symbol), the runs its cells make (domain.coverage.cell_runs: consecutive days of one
state, queue and step), so a read of a year of 100 symbols fetches a few thousand runs rather
than 36,600 cells.

The runs are kept in the transaction that changes the cells: `rebuild` is given the days each
(type, symbol) had written, drops the runs that touch them or the day on either side, and makes
them again from the cells they spanned. `build_all` makes the runs of a file whose cells were
written without them (a release before them, or seeded straight into `coverage_cells`), once, at
open. Apart from the SQLite store's other modules (bootstrap imports it; it imports no part).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date
from typing import Any, Final

import aiosqlite

from queue_manager.domain import coverage
from queue_manager.domain.coverage import Cell, CellRun, CellState

RUN_COLUMNS: Final = "type, symbol, start_day, end_day, state, records, first, last, queue_id, step"
_INSERT_RUN: Final = (
    f"INSERT INTO coverage_runs ({RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
#: per window (w: type, symbol, its days a..b), the days its runs are made again over: from the
#: start of the run holding the day before it (else that day) to the end of the run holding the
#: day after it (else that day); no run crosses either end
_REACH: Final = (
    "WITH w(type, symbol, a, b) AS (VALUES {}) "
    "SELECT w.type, w.symbol, "
    "COALESCE((SELECT r.start_day FROM coverage_runs r WHERE r.type = w.type "
    "AND r.symbol = w.symbol AND r.end_day >= w.a - 1 AND r.start_day = (SELECT MAX(p.start_day) "
    "FROM coverage_runs p WHERE p.type = w.type AND p.symbol = w.symbol "
    "AND p.start_day <= w.a - 1)), w.a - 1), "
    "COALESCE((SELECT r.end_day FROM coverage_runs r WHERE r.type = w.type "
    "AND r.symbol = w.symbol AND r.end_day >= w.b + 1 AND r.start_day = (SELECT MAX(p.start_day) "
    "FROM coverage_runs p WHERE p.type = w.type AND p.symbol = w.symbol "
    "AND p.start_day <= w.b + 1)), w.b + 1) "
    "FROM w"
)
_DROP_RUNS: Final = (
    "DELETE FROM coverage_runs WHERE type = ? AND symbol = ? AND start_day BETWEEN ? AND ?"
)
#: the cells of each reach (w: type, symbol, lo..hi), by type, symbol, day; CROSS JOIN keeps
#: `w` outside, each window one range of the primary key (as coverage.RUNS)
_CELLS_IN: Final = (
    "WITH w(type, symbol, lo, hi) AS (VALUES {}) "
    "SELECT c.symbol, c.type, c.day, c.state, c.records, c.first, c.last, c.queue_id, c.step, "
    "c.created FROM w CROSS JOIN coverage_cells c ON c.type = w.type AND c.symbol = w.symbol "
    "AND c.day BETWEEN w.lo AND w.hi ORDER BY c.type, c.symbol, c.day"
)
#: windows per statement (4 values each)
_WINDOWS: Final = 500
_UNBUILT: Final = (
    "SELECT EXISTS (SELECT 1 FROM coverage_cells) AND NOT EXISTS (SELECT 1 FROM coverage_runs)"
)
_CELLS_AFTER: Final = (
    "SELECT symbol, type, day, state, records, first, last, queue_id, step, created "
    "FROM coverage_cells WHERE (type, symbol, day) > (?, ?, ?) "
    "ORDER BY type, symbol, day LIMIT ?"
)
#: cells per batch of `build_all`
BUILD_BATCH: Final = 100_000

_STATES: Final = {state.value: state for state in CellState}


def cells_of(rows: Iterable[Sequence[Any]]) -> list[Cell]:
    states, to_day = _STATES, date.fromordinal
    return [
        Cell(s, t, to_day(d), states[st], n, a, b, q, i, c)
        for s, t, d, st, n, a, b, q, i, c in rows
    ]


def run_row(run: CellRun) -> tuple[Any, ...]:
    return (
        run.type,
        run.symbol,
        run.start.toordinal(),
        run.end.toordinal(),
        run.state.value,
        run.records,
        run.first,
        run.last,
        run.queue_id,
        run.step,
    )


def merged(windows: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Day windows (ordinals), those that overlap or touch made one."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(windows):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


async def rebuild(
    writer: aiosqlite.Connection, touched: Mapping[tuple[str, str], Iterable[tuple[int, int]]]
) -> None:
    """The runs of each (type, symbol) over the day windows whose cells were written or
    deleted, made again from the cells, in the caller's transaction: the runs with days in a
    window or next to it are dropped and made again from the cells they spanned. A run
    elsewhere is untouched: its days and their neighbours did not change. A few statements for
    the whole batch, whatever the number of windows (the upgrade derivation writes 500 queues
    per transaction)."""
    windows = [
        (type_, symbol, a, b) for (type_, symbol), days in touched.items() for a, b in merged(days)
    ]
    reach: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for some in _chunks(windows):
        rows: Any = await writer.execute_fetchall(
            _REACH.format(_values(len(some), 4)), [v for window in some for v in window]
        )
        for type_, symbol, low, high in rows:
            reach.setdefault((str(type_), str(symbol)), []).append((int(low), int(high)))
    spans = [
        (type_, symbol, low, high)
        for (type_, symbol), found in sorted(reach.items())
        for low, high in merged(found)
    ]
    await writer.executemany(_DROP_RUNS, spans)
    runs: list[tuple[Any, ...]] = []
    for some in _chunks(spans):
        cells: Any = await writer.execute_fetchall(
            _CELLS_IN.format(_values(len(some), 4)), [v for span in some for v in span]
        )
        # the spans of a (type, symbol) neither overlap nor touch: no run joins two of them
        runs += [run_row(run) for run in coverage.cell_runs(cells_of(cells))]
    await writer.executemany(_INSERT_RUN, runs)


def _chunks(items: Sequence[tuple[Any, ...]]) -> Iterator[Sequence[tuple[Any, ...]]]:
    for start in range(0, len(items), _WINDOWS):
        yield items[start : start + _WINDOWS]


def _values(rows: int, width: int) -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return ", ".join([row] * rows)


async def build_all(writer: aiosqlite.Connection, batch: int = BUILD_BATCH) -> int:
    """The runs of every cell, when the file has cells and no runs (made before the runs were
    kept), in the caller's transaction, read in batches of `batch` cells. Returns the runs
    made."""
    unbuilt: Any = await writer.execute_fetchall(_UNBUILT)
    if not unbuilt or not unbuilt[0][0]:
        return 0
    made = 0
    after: tuple[str, str, int] = ("", "", 0)
    pending: CellRun | None = None
    while True:
        found: Any = await writer.execute_fetchall(_CELLS_AFTER, (*after, batch))
        if not found:
            break
        last = found[-1]
        after = (str(last[1]), str(last[0]), int(last[2]))
        runs = coverage.cell_runs(cells_of(found))
        if pending is not None:
            head = runs[0]
            if (head.type, head.symbol, head.state, head.queue_id, head.step) == (
                pending.type,
                pending.symbol,
                pending.state,
                pending.queue_id,
                pending.step,
            ) and head.start.toordinal() == pending.end.toordinal() + 1:
                runs[0] = pending._replace(
                    end=head.end,
                    records=pending.records + head.records,
                    last=head.last or pending.last,
                )
            else:
                runs.insert(0, pending)
        pending = runs.pop()
        await writer.executemany(_INSERT_RUN, [run_row(run) for run in runs])
        made += len(runs)
    if pending is not None:
        await writer.executemany(_INSERT_RUN, [run_row(pending)])
        made += 1
    return made
