"""The coverage answer computed the plain way, day by day from cells: what the ledger's runs
(domain/coverage.py `encode_runs`) must give. A test oracle, not a second implementation."""

from __future__ import annotations

from datetime import date

from queue_manager.domain.coverage import (
    DAY,
    FILLABLE,
    Cell,
    CellState,
    ExpectedCalendar,
    Run,
    _days,
    cell_state,
)


def encode_cells(
    symbol: str,
    cells: dict[date, Cell],
    first: date,
    last: date,
    gaps: ExpectedCalendar,
) -> list[Run]:
    """The days first..last of one (symbol, type) as runs (missing days included).

    Walks the cells, not the days: a year of 100 symbols is read per request, and the days
    between two cells are one stretch of `missing` unless the calendar has gaps there."""
    runs: list[Run] = []
    gapped = gaps.any_for(symbol)

    def add(day: date, end: date, state: CellState, cell: Cell | None) -> None:
        queue_id = cell.queue_id if cell is not None else None
        step = cell.step if cell is not None else None
        current = runs[-1] if runs else None
        if (
            current is not None
            and current.state is state
            and current.queue_id == queue_id
            and current.step == step
            and current.end + DAY == day
        ):
            current.end = end
        else:
            current = Run(day, end, state, queue_id=queue_id, step=step)
            runs.append(current)
            if cell is not None:
                current.first = cell.first
        if cell is not None:
            current.records += cell.records
            current.last = cell.last or current.last

    def absent(day: date, end: date) -> None:
        if not gapped:
            add(day, end, CellState.MISSING, None)
            return
        for each in _days(day, end):
            add(each, each, cell_state(None, each, gaps, symbol), None)

    expected = first
    for day in sorted(cells):
        if day < first or day > last:
            continue
        if day > expected:
            absent(expected, day - DAY)
        cell = cells[day]
        state = cell.state
        if gapped and state in FILLABLE:
            state = cell_state(cell, day, gaps, symbol)
        current = runs[-1] if runs else None
        if (  # the common case, inline: the day extends the run before it
            current is not None
            and day == expected
            and current.state is state
            and current.queue_id == cell.queue_id
            and current.step == cell.step
        ):
            current.end = day
            current.records += cell.records
            current.last = cell.last or current.last
        else:
            add(day, day, state, cell if state is not CellState.EXPECTED_GAP else None)
        expected = day + DAY
    if expected <= last:
        absent(expected, last)
    return runs
