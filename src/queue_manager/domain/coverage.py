"""The coverage ledger's rules (docs/coverage.md): what a queue says about the data that reached
the store, as cells keyed (symbol, data type, UTC day); their run-length encoding; and which
cells a fill runs again, in calendar chunks.

Coverage is what reached the store: per data type of a queue, its arango-connector's step when
it has one, else its loader's. A finished step covers its time range; a failed or stopped one
covers the days before its `last_loaded_timestamp`, that day partially and the rest failed; a
streaming step covers the hours it ran. A worker may report its exact coverage (`coverage` in
its telemetry, docs/worker-protocol.md): when it did, that wins over the rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from queue_manager.domain.backfill import Chunk, chunks
from queue_manager.domain.models import QueueState, Step, StepStatus, Target
from queue_manager.domain.records import sort_key
from queue_manager.domain.spans import merge, utc
from queue_manager.job_contract import is_streaming

DAY = timedelta(days=1)
#: the last day a cell may stand for: the day after it, where its span ends, must be a date
_LAST_DAY = date.max - DAY
#: the days of a queue's range the ledger holds: a range may run to 9999-12-31, which no loader
#: will ever reach; ten years is more than any real one
MAX_QUEUE_DAYS = 3660
#: a day counts as covered to its end from this instant on: the platform's ranges end at
#: 23:59:59, without the last second's fraction
_END_SLACK = timedelta(seconds=1)


class CellState(StrEnum):
    COMPLETE = "complete"
    PARTIAL = "partial"
    FAILED = "failed"
    RUNNING = "running"
    MISSING = "missing"
    EXPECTED_GAP = "expected_gap"


#: what a fill runs again; never running, complete or expected_gap (a partial day is loaded
#: again whole: the part that failed cannot be loaded alone)
FILLABLE = frozenset({CellState.MISSING, CellState.FAILED, CellState.PARTIAL})
#: what the ledger stores: `missing` is the absence of a cell, `expected_gap` the calendar's
STORED = (CellState.COMPLETE, CellState.PARTIAL, CellState.FAILED, CellState.RUNNING)


class Cell(NamedTuple):
    """One (symbol, data type, UTC day) as a queue's step left it. A tuple with its instants
    as ISO text: a year of 100 symbols is 36,600 of them per read, built straight from rows."""

    symbol: str
    type: str
    day: date
    state: CellState
    records: int
    #: the first and last instants of the day that reached the store (None: nothing did)
    first: str | None
    last: str | None
    queue_id: str
    step: int
    #: when the producing queue was created (records.sort_key): the newer queue's cell wins
    created: str

    @property
    def loaded_until(self) -> str | None:
        return self.last if self.state is CellState.PARTIAL else None


def wins(new: Cell, old: Cell) -> bool:
    """Whether `new` replaces `old` in the ledger. The same queue's latest word always does;
    otherwise a complete cell beats any other state (data that reached the store stays there
    when a later run over it fails), then the newer queue wins. An order, so the ledger is the
    same whatever order queues are written in (the upgrade derivation relies on it)."""
    if new.queue_id == old.queue_id:
        return True
    return _rank(new) > _rank(old)


def _rank(cell: Cell) -> tuple[bool, str, str]:
    return cell.state is CellState.COMPLETE, cell.created, cell.queue_id


# -- a queue's cells ---------------------------------------------------------------------------


def producing_steps(queue: QueueState) -> list[Step]:
    """Per data type, the step whose writes are the coverage: the connector's, else the
    loader's (a backfill's parent has no steps, so no cells)."""
    chosen: dict[str, Step] = {}
    for step in queue.steps:
        if step.target is Target.CONNECTOR:
            chosen[step.type] = step
    for step in queue.steps:
        if step.target is Target.LOADER:
            chosen.setdefault(step.type, step)
    return list(chosen.values())


def fingerprint(queue: QueueState) -> str:
    """What a queue's cells depend on, cheap to compute: equal fingerprints, equal cells. A
    progress tick of a running queue leaves it alone, so the ledger is written only when its
    cells change. It never repeats in a queue's life (each retry adds to `retries` or `run`),
    so a store may skip a write whose fingerprint it already holds."""
    parts = [queue.time_range, str(queue.retries)]
    for step in producing_steps(queue):
        ended = _ended(queue, step)
        part = f"{step.index}:{step.run}:{step.status.value if ended else 'active'}"
        if ended:
            part += f":{step.records_written}:{_iso(step.last_loaded_timestamp)}"
            part += f":{_iso(step.started_at)}:{_iso(step.finished_at)}"
        if step.coverage is not None:
            part += ":" + ",".join(f"{_iso(s.start)}/{_iso(s.end)}" for s in step.coverage.loaded)
            part += ";" + ",".join(f"{_iso(s.start)}/{_iso(s.end)}" for s in step.coverage.gaps)
        parts.append(part)
    return "|".join(parts)


def _iso(at: datetime | None) -> str:
    return at.isoformat() if at is not None else ""


def _iso_or_none(at: datetime | None) -> str | None:
    if at is None:
        return None
    if at.tzinfo is not UTC:
        at = utc(at).astimezone(UTC)
    return at.isoformat()


def _ended(queue: QueueState, step: Step) -> bool:
    """A step ended, or one that never will (its queue ended first, so it was skipped or its
    job deleted). A step that waits to retry is not ended."""
    if step.status is StepStatus.RETRYING:
        return queue.status.terminal
    return step.status.terminal or queue.status.terminal


def queue_cells(queue: QueueState) -> list[Cell]:
    """The cells a queue stands for, by the rules of the module docstring."""
    if not queue.steps:
        return []
    first_day, last_day = queue.start_time.date(), queue.end_time.date()
    # in ordinals: a range that ends on the last day a date can hold has no day after it
    last_day = date.fromordinal(
        min(
            last_day.toordinal(),
            first_day.toordinal() + MAX_QUEUE_DAYS - 1,
            _LAST_DAY.toordinal(),
        )
    )
    if last_day < first_day:
        return []
    begin = _midnight(first_day)
    end = _midnight(last_day) + DAY  # exclusive
    cells: list[Cell] = []
    for step in producing_steps(queue):
        spans, ended = _covered(queue, step, begin, end)
        cells += _cells_of(queue, step, first_day, last_day, spans, ended)
    return cells


def _covered(
    queue: QueueState, step: Step, begin: datetime, end: datetime
) -> tuple[list[tuple[datetime, datetime]] | None, bool]:
    """The spans of [begin, end) that reached the store (None: all of it), and whether the
    step ended. While it runs, only spans a worker reported are known."""
    ended = _ended(queue, step)
    if step.coverage is not None and (step.coverage.loaded or step.coverage.gaps):
        loaded = [(s.start, s.end) for s in step.coverage.loaded]
        if not step.coverage.loaded:
            # only gaps reported: what it went through, minus those
            until = end if step.status is StepStatus.FINISHED else step.last_loaded_timestamp
            loaded = [(begin, until)] if until is not None else []
        spans = _minus(_clip(loaded, begin, end), [(s.start, s.end) for s in step.coverage.gaps])
        return spans, ended
    if not ended:
        return [], False
    if is_streaming(step.type):
        started = step.started_at
        stopped = step.finished_at or step.last_loaded_timestamp
        if started is None or stopped is None:
            return [], True
        return _clip([(started, stopped)], begin, end), True
    if step.status is StepStatus.FINISHED:
        return None, True
    reached = step.last_loaded_timestamp
    return (_clip([(begin, reached)], begin, end) if reached is not None else []), True


_DAY_SECONDS = DAY.total_seconds()
_FULL_DAY = (DAY - _END_SLACK).total_seconds()


def _cells_of(
    queue: QueueState,
    step: Step,
    first_day: date,
    last_day: date,
    spans: list[tuple[datetime, datetime]] | None,
    ended: bool,
) -> list[Cell]:
    streaming_stop = ended and is_streaming(step.type) and step.status is not StepStatus.ERROR
    per_day: list[tuple[date, CellState, datetime | None, datetime | None, float]] = []
    # `spans` are sorted and disjoint: one pointer walks them along the days (a queue of years
    # is thousands of days, derived for every stored queue at an upgrade)
    at = 0
    for day in _days(first_day, last_day):
        start = _midnight(day)
        stop = start + DAY
        if spans is None:
            per_day.append((day, CellState.COMPLETE, start, stop - _END_SLACK, _DAY_SECONDS))
            continue
        while at < len(spans) and spans[at][1] <= start:
            at += 1
        seconds, first, last, i = 0.0, None, None, at
        while i < len(spans) and spans[i][0] < stop:
            a, b = max(spans[i][0], start), min(spans[i][1], stop)
            if b > a:
                seconds += (b - a).total_seconds()
                first = first or a
                last = b
            i += 1
        if first is not None and seconds >= _FULL_DAY:
            per_day.append((day, CellState.COMPLETE, first, last, seconds))
        elif first is not None:
            per_day.append((day, CellState.PARTIAL, first, last, seconds))
        elif not ended:
            per_day.append((day, CellState.RUNNING, None, None, 0.0))
        elif not streaming_stop:
            # a stream stopped by hand leaves the days it never reached missing, not failed
            per_day.append((day, CellState.FAILED, None, None, 0.0))
    records = _spread(step.records_written, [seconds for *_, seconds in per_day])
    created = sort_key(queue.created_at)
    symbol, type_, queue_id, index = queue.symbol, step.type, queue.id, step.index
    return [
        Cell(
            symbol,
            type_,
            day,
            state,
            n,
            _iso_or_none(first),
            _iso_or_none(last),
            queue_id,
            index,
            created,
        )
        for (day, state, first, last, _), n in zip(per_day, records, strict=True)
    ]


def _spread(total: int, weights: Sequence[float]) -> list[int]:
    """`total` shared in proportion to `weights`, in whole numbers that add up to it (the
    records of a step reach the ledger per day in proportion to the time each day covers)."""
    whole = sum(weights)
    if whole <= 0 or total <= 0:
        return [0] * len(weights)
    shares, given, running = [], 0, 0.0
    for weight in weights:
        running += weight
        upto = round(total * running / whole)
        shares.append(upto - given)
        given = upto
    return shares


# -- spans -------------------------------------------------------------------------------------


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += DAY


def _clip(
    spans: Iterable[tuple[datetime, datetime]], begin: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """The parts of `spans` inside [begin, end), sorted and merged."""
    inside = sorted(
        (max(utc(a), begin), min(utc(b), end)) for a, b in spans if utc(b) > begin and utc(a) < end
    )
    return merge([(a, b) for a, b in inside if b > a])


def _minus(
    spans: list[tuple[datetime, datetime]], holes: Iterable[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    result = spans
    for h0, h1 in merge((utc(a), utc(b)) for a, b in holes):
        cut: list[tuple[datetime, datetime]] = []
        for a, b in result:
            if b <= h0 or a >= h1:
                cut.append((a, b))
                continue
            if a < h0:
                cut.append((a, h0))
            if b > h1:
                cut.append((h1, b))
        result = cut
    return result


# -- run-length encoding -----------------------------------------------------------------------


@dataclass(slots=True)
class Run:
    """Consecutive days of one state and producer."""

    start: date
    end: date
    state: CellState
    records: int = 0
    queue_id: str | None = None
    step: int | None = None
    first: str | None = None
    last: str | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "state": self.state.value,
            "records": self.records,
            "queue_id": self.queue_id,
            "step": self.step,
            "first": self.first,
            "last": self.last,
        }
        if self.state is CellState.PARTIAL:
            out["loaded_until"] = out["last"]
        return out


def cell_state(cell: Cell | None, day: date, gaps: ExpectedCalendar, symbol: str) -> CellState:
    """What a day shows: its cell, or `missing`; a day of the expected-gap calendar shows
    `expected_gap` unless data reached the store or a run is loading it."""
    state = cell.state if cell is not None else CellState.MISSING
    if state in FILLABLE and gaps.covers(symbol, day):
        return CellState.EXPECTED_GAP
    return state


# -- the ledger's runs ----------------------------------------------------------------------------
#
# A store keeps the ledger's runs beside its cells: consecutive days of one (symbol, type) with
# the same state, queue and step (without missing days or expected
# gaps, which a read adds). A read of a year of 100 symbols then fetches a few thousand runs
# instead of 36,600 cells.


class CellRun(NamedTuple):
    """Consecutive stored cells of one (symbol, type) with the same state, queue and step: their
    records added up, the first instant of the first day, the last instant of the latest day
    that has one (as a run folds them)."""

    symbol: str
    type: str
    start: date
    end: date
    state: CellState
    records: int
    first: str | None
    last: str | None
    queue_id: str
    step: int


#: what the days of a run inside a range hold: (records, first, last), folded as a run does
Tally = tuple[int, str | None, str | None]


def cell_runs(cells: Iterable[Cell]) -> list[CellRun]:
    """The runs `cells` make (sorted by symbol, type and day, as a store reads them)."""
    runs: list[CellRun] = []
    head: Cell | None = None
    end, records, tail = date.min, 0, None
    for cell in cells:
        if (
            head is not None
            and cell.day == end + DAY
            and cell.state is head.state
            and cell.queue_id == head.queue_id
            and cell.step == head.step
            and cell.symbol == head.symbol
            and cell.type == head.type
        ):
            end, records, tail = cell.day, records + cell.records, cell.last or tail
            continue
        if head is not None:
            runs.append(_run_of(head, end, records, tail))
        head, end, records, tail = cell, cell.day, cell.records, cell.last or None
    if head is not None:
        runs.append(_run_of(head, end, records, tail))
    return runs


def _run_of(head: Cell, end: date, records: int, tail: str | None) -> CellRun:
    return CellRun(
        head.symbol,
        head.type,
        head.day,
        end,
        head.state,
        records,
        head.first,
        tail,
        head.queue_id,
        head.step,
    )


def tally(cells: Iterable[Cell]) -> Tally:
    """(records, first, last) of consecutive cells of one run, sorted by day: what the run
    clipped to those days holds."""
    records, first, last, seen = 0, None, None, False
    for cell in cells:
        if not seen:
            first, seen = cell.first, True
        records += cell.records
        last = cell.last or last
    return records, first, last


def clip(run: CellRun, first: date, last: date, inside: Tally | None) -> CellRun:
    """`run` cut to the days first..last; `inside` is the tally of its days there (None when
    the run lies inside already: it is returned as it is)."""
    start, end = max(run.start, first), min(run.end, last)
    if inside is None or (start == run.start and end == run.end):
        return run
    records, head, tail = inside
    return run._replace(start=start, end=end, records=records, first=head, last=tail)


def needs_cells(run: CellRun, gaps: ExpectedCalendar) -> bool:
    """Whether `encode_runs` needs the cells of `run` (clipped): a fillable run with days in
    the expected-gap calendar is cut at them, so its pieces are tallied day by day."""
    return run.state in FILLABLE and gaps.overlaps(run.symbol, run.start, run.end)


def encode_runs(
    symbol: str,
    runs: Sequence[CellRun],
    first: date,
    last: date,
    gaps: ExpectedCalendar,
    cells: Mapping[date, Cell] | None = None,
) -> list[Run]:
    """What the cells the runs were made of answer, run-length encoded: the days first..last of one
    (symbol, type) as runs, missing days included, from its stored runs clipped to first..last
    (sorted by start). `cells` holds the days of the runs `needs_cells` names."""
    out: list[Run] = []
    gapped = gaps.any_for(symbol)

    def add(
        start: date,
        end: date,
        state: CellState,
        records: int = 0,
        head: str | None = None,
        tail: str | None = None,
        queue_id: str | None = None,
        step: int | None = None,
    ) -> None:
        current = out[-1] if out else None
        if (
            current is not None
            and current.state is state
            and current.queue_id == queue_id
            and current.step == step
            and current.end + DAY == start
        ):
            current.end = end
        else:
            current = Run(start, end, state, queue_id=queue_id, step=step, first=head)
            out.append(current)
        current.records += records
        current.last = tail or current.last

    def absent(start: date, end: date) -> None:
        if not gapped:
            add(start, end, CellState.MISSING)
            return
        for day in _days(start, end):
            add(day, day, cell_state(None, day, gaps, symbol))

    expected = first
    for run in runs:
        if run.start > expected:
            absent(expected, run.start - DAY)
        if gapped and needs_cells(run, gaps):
            held = cells or {}
            for day in _days(run.start, run.end):
                if gaps.covers(symbol, day):
                    add(day, day, CellState.EXPECTED_GAP)
                    continue
                cell = held.get(day)
                if cell is None:  # gone since the runs were read (a write between two reads)
                    add(day, day, CellState.MISSING)
                    continue
                add(
                    day, day, run.state, cell.records, cell.first, cell.last, run.queue_id, run.step
                )
        else:
            add(
                run.start,
                run.end,
                run.state,
                run.records,
                run.first,
                run.last,
                run.queue_id,
                run.step,
            )
        expected = run.end + DAY
    if expected <= last:
        absent(expected, last)
    return out


# -- expected gaps -----------------------------------------------------------------------------

#: the symbol of a gap that concerns every symbol
ALL_SYMBOLS = "*"
#: the longest gap the calendar takes: an outage of years is a mistake
MAX_GAP_DAYS = 3660


class GapBody(BaseModel):
    """A known outage without its name: `PUT /coverage/expected-gaps/{name}`'s body."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)

    symbol: str = Field(
        default=ALL_SYMBOLS,
        pattern=r"^(\*|[A-Z0-9]{2,20})$",
        description="The symbol it concerns (upper-cased), or * for every symbol.",
        examples=["BTCUSDT"],
    )
    start: date = Field(alias="from", description="Its first day (UTC).")
    end: date = Field(
        alias="to",
        description=f"Its last day (UTC), on or after `from`; {MAX_GAP_DAYS} days at most.",
    )
    reason: str = Field(default="", max_length=200, description="Why there is no data.")

    @field_validator("symbol", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("end")
    @classmethod
    def _ordered(cls, value: date, info: ValidationInfo) -> date:
        start = info.data.get("start")
        if start is not None and value < start:
            raise ValueError("is before `from`")
        if start is not None and (value - start).days >= MAX_GAP_DAYS:
            raise ValueError(f"more than {MAX_GAP_DAYS} days after `from`")
        return value

    def named(self, name: str) -> ExpectedGap:
        return ExpectedGap(name=name, **self.model_dump())


class ExpectedGap(GapBody):
    """A known outage (docs/coverage.md): no data exists for these days, so they show as
    `expected_gap` and are never filled. From the EXPECTED_GAPS_FILE or the API."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description="Its name: 1 to 64 letters, digits, '.', '_' or '-'.",
    )
    #: where it comes from: `api` (stored) or `file` (EXPECTED_GAPS_FILE, read-only)
    source: str = Field(default="api", pattern="^(api|file)$")

    def as_dict(self) -> dict[str, str]:
        return self.model_dump(mode="json", by_alias=True)


class ExpectedCalendar:
    def __init__(self, gaps: Iterable[ExpectedGap] = ()) -> None:
        self._by_symbol: dict[str, list[tuple[date, date]]] = {}
        for gap in gaps:
            self._by_symbol.setdefault(gap.symbol, []).append((gap.start, gap.end))

    def any_for(self, symbol: str) -> bool:
        """Whether any gap concerns the symbol (most reads have none to look up per day)."""
        return symbol in self._by_symbol or ALL_SYMBOLS in self._by_symbol

    def overlaps(self, symbol: str, start: date, end: date) -> bool:
        """Whether any gap of the symbol has a day in start..end."""
        for key in (symbol, ALL_SYMBOLS):
            for a, b in self._by_symbol.get(key, ()):
                if a <= end and start <= b:
                    return True
        return False

    def spans(self, symbol: str) -> list[tuple[date, date]]:
        """The symbol's gaps and those of every symbol."""
        return [*self._by_symbol.get(symbol, ()), *self._by_symbol.get(ALL_SYMBOLS, ())]

    def covers(self, symbol: str, day: date) -> bool:
        for key in (symbol, ALL_SYMBOLS):
            for start, end in self._by_symbol.get(key, ()):
                if start <= day <= end:
                    return True
        return False


# -- fill planning -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FillChunk:
    symbol: str
    type: str
    start: date
    end: date

    @property
    def time_range(self) -> str:
        return f"{self.start.isoformat()}:{self.end.isoformat()}"

    def as_dict(self) -> dict[str, str]:
        return {"symbol": self.symbol, "type": self.type, "time_range": self.time_range}


def fill_runs(
    symbol: str,
    settled: Iterable[tuple[date, date]],
    first: date,
    last: date,
    gaps: ExpectedCalendar,
) -> list[tuple[date, date]]:
    """The runs of days first..last a fill runs again, sorted: the days inside no `settled` run
    (complete or running days) and no expected gap of the symbol. Counted in runs, never in
    days, so a decade of 1,000 symbols costs no more than its runs."""
    taken = sorted(
        (max(a, first), min(b, last))
        for a, b in (*settled, *gaps.spans(symbol))
        if a <= last and b >= first
    )
    runs: list[tuple[date, date]] = []
    at = first
    for a, b in taken:
        if a > at:
            runs.append((at, a - DAY))
        if b >= last:
            return runs
        at = max(at, b + DAY)
    runs.append((at, last))
    return runs


def plan_fill(
    symbol: str, type_: str, runs: Iterable[tuple[date, date]], chunk: Chunk
) -> list[FillChunk]:
    """The runs, cut at the chunk's calendar boundaries."""
    return [
        FillChunk(symbol, type_, a, b) for start, end in runs for a, b in chunks(start, end, chunk)
    ]
