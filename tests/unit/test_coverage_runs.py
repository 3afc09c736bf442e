"""The ledger read from stored runs (domain/coverage.py: cell_runs, tally, clip, encode_runs)
answers exactly what `encode` answers from the cells, for random cells and expected gaps: runs
clipped at either end of the range, fillable runs cut at gap days, missing stretches between."""

from __future__ import annotations

import random
from datetime import date, timedelta

from queue_manager.domain import coverage
from queue_manager.domain.coverage import (
    STORED,
    Cell,
    CellRun,
    CellState,
    ExpectedCalendar,
    ExpectedGap,
)
from tests.support.coverage_oracle import encode_cells

BASE = date(2024, 1, 1)
SYMBOLS = ("BTCUSDT", "ETHUSDT")
TYPE = "api_candles_5m"
CASES = 3000


def _instant(rng: random.Random, day: date) -> str | None:
    pick = rng.random()
    if pick < 0.3:
        return None
    if pick < 0.35:
        return ""  # falsy text: folded like None
    return f"{day.isoformat()}T{rng.randrange(24):02d}:00:00+00:00"


def _cells(rng: random.Random, symbol: str, days: int) -> list[Cell]:
    """Cells of one (symbol, type): runs of a state and producer, with holes."""
    cells: list[Cell] = []
    state, queue, step = rng.choice(STORED), "q1", 0
    for offset in range(days):
        if rng.random() < 0.15:
            continue  # missing
        if rng.random() < 0.3:
            state = rng.choice(STORED)
        if rng.random() < 0.2:
            queue = rng.choice(("q1", "q2", "q3"))
        if rng.random() < 0.1:
            step = rng.randrange(2)
        day = BASE + timedelta(days=offset)
        cells.append(
            Cell(
                symbol,
                TYPE,
                day,
                state,
                rng.randrange(0, 500),
                _instant(rng, day),
                _instant(rng, day),
                queue,
                step,
                "2024-01-01T00:00:00.000000",
            )
        )
    return cells


def _gaps(rng: random.Random, days: int) -> ExpectedCalendar:
    gaps = []
    for n in range(rng.randrange(4)):
        start = BASE + timedelta(days=rng.randrange(-3, days + 3))
        gaps.append(
            ExpectedGap.model_validate(
                {
                    "name": f"g{n}",
                    "symbol": rng.choice(("*", *SYMBOLS)),
                    "from": start.isoformat(),
                    "to": (start + timedelta(days=rng.randrange(4))).isoformat(),
                }
            )
        )
    return ExpectedCalendar(gaps)


def _read(
    symbol: str,
    cells: list[Cell],
    stored: list[CellRun],
    first: date,
    last: date,
    gaps: ExpectedCalendar,
) -> list[coverage.Run]:
    """What a store and the service do: the runs with days in first..last, those crossing it
    clipped with the tally of their days inside, and the cells of the runs cut at gaps."""
    by_day = {cell.day: cell for cell in cells}
    clipped = []
    for run in stored:
        if run.end < first or run.start > last:
            continue
        start, end = max(run.start, first), min(run.end, last)
        inside = [by_day[start + timedelta(days=d)] for d in range((end - start).days + 1)]
        clipped.append(coverage.clip(run, first, last, coverage.tally(inside)))
    needed = {
        day: cell
        for run in clipped
        if coverage.needs_cells(run, gaps)
        for day, cell in by_day.items()
        if run.start <= day <= run.end
    }
    return coverage.encode_runs(symbol, clipped, first, last, gaps, needed)


def test_the_read_from_runs_is_the_read_from_cells() -> None:
    rng = random.Random(20241207)
    clipped_at = {"first": 0, "last": 0, "split": 0}
    for _ in range(CASES):
        days = rng.randrange(1, 80)
        symbol = rng.choice(SYMBOLS)
        cells = _cells(rng, symbol, days)
        gaps = _gaps(rng, days)
        first = BASE + timedelta(days=rng.randrange(-5, days + 2))
        last = first + timedelta(days=rng.randrange(0, days + 5))
        stored = coverage.cell_runs(cells)
        in_range = {cell.day: cell for cell in cells if first <= cell.day <= last}
        expected = encode_cells(symbol, in_range, first, last, gaps)
        got = _read(symbol, cells, stored, first, last, gaps)
        assert [r.as_dict() for r in got] == [r.as_dict() for r in expected], (first, last)
        clipped_at["first"] += any(r.start < first <= r.end for r in stored)
        clipped_at["last"] += any(r.start <= last < r.end for r in stored)
        clipped_at["split"] += any(coverage.needs_cells(r, gaps) for r in stored)
    # the cases went through every path
    assert min(clipped_at.values()) > CASES // 10, clipped_at


def test_runs_are_the_cells_merged_by_state_and_producer() -> None:
    day = BASE
    cells = [
        Cell("A", TYPE, day, CellState.COMPLETE, 1, "a1", "b1", "q", 0, "c"),
        Cell("A", TYPE, day + timedelta(1), CellState.COMPLETE, 2, "a2", None, "q", 0, "c"),
        Cell("A", TYPE, day + timedelta(2), CellState.COMPLETE, 3, "a3", "b3", "q", 1, "c"),
        Cell("A", TYPE, day + timedelta(4), CellState.COMPLETE, 4, "a4", "b4", "q", 1, "c"),
        Cell("B", TYPE, day + timedelta(5), CellState.COMPLETE, 5, None, "b5", "q", 1, "c"),
    ]
    assert coverage.cell_runs(cells) == [
        CellRun("A", TYPE, day, day + timedelta(1), CellState.COMPLETE, 3, "a1", "b1", "q", 0),
        CellRun(
            "A",
            TYPE,
            day + timedelta(2),
            day + timedelta(2),
            CellState.COMPLETE,
            3,
            "a3",
            "b3",
            "q",
            1,
        ),
        CellRun(
            "A",
            TYPE,
            day + timedelta(4),
            day + timedelta(4),
            CellState.COMPLETE,
            4,
            "a4",
            "b4",
            "q",
            1,
        ),
        CellRun(
            "B",
            TYPE,
            day + timedelta(5),
            day + timedelta(5),
            CellState.COMPLETE,
            5,
            None,
            "b5",
            "q",
            1,
        ),
    ]
