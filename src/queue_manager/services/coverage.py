"""Coverage use cases (docs/coverage.md): read the ledger as run-length encoded rows and per
(symbol, type) summaries, plan a fill and start it as a backfill of only the planned chunks,
the expected-gap calendar (a file and the API), the upgrade derivation and the ledger's gauges.

The ledger itself is written by the store with each queue (ports.CoverageStore); this service
only reads it, so what it shows is what the store committed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import structlog
from pydantic import TypeAdapter, ValidationError

from queue_manager.domain import coverage, coverage_fill
from queue_manager.domain.backfill import count_chunks
from queue_manager.domain.coverage import (
    CellState,
    ExpectedCalendar,
    ExpectedGap,
    FillChunk,
)
from queue_manager.domain.coverage_fill import FillRequest
from queue_manager.domain.errors import (
    Conflict,
    ExpectedGapNotFound,
    InvalidRequest,
    Misconfigured,
)
from queue_manager.ports import Clock, CoverageStore
from queue_manager.services.backfills import BackfillService

log = structlog.get_logger(__name__)

#: queues per derivation transaction: small enough that telemetry writes are never held long
DERIVE_BATCH = 500
_GAPS: TypeAdapter[list[ExpectedGap]] = TypeAdapter(list[ExpectedGap])


@dataclass(frozen=True)
class FillResult:
    chunks: list[FillChunk]
    #: the backfill's parent, None for a dry run or when nothing was to fill
    queue_id: str | None


def read_gaps_file(path: Path) -> list[ExpectedGap]:
    """EXPECTED_GAPS_FILE: a JSON list of gaps (docs/coverage.md); Misconfigured saying what
    is wrong, so start-up stops with one line."""
    try:
        raw = orjson.loads(path.read_bytes())
        if not isinstance(raw, list):
            raise ValueError("must be a JSON list of gaps")
        gaps = _GAPS.validate_python(
            [{**item, "source": "file"} if isinstance(item, dict) else item for item in raw]
        )
    except (OSError, ValueError, ValidationError) as exc:
        raise Misconfigured(f"EXPECTED_GAPS_FILE {path}: {exc}") from None
    names = Counter(gap.name for gap in gaps)
    repeated = sorted(name for name, n in names.items() if n > 1)
    if repeated:
        raise Misconfigured(f"EXPECTED_GAPS_FILE {path}: names repeated: {', '.join(repeated)}")
    return gaps


class CoverageService:
    def __init__(
        self,
        store: CoverageStore,
        backfills: BackfillService,
        *,
        clock: Clock,
        file_gaps: Sequence[ExpectedGap] = (),
        count_cells: Callable[[dict[tuple[str, str], int]], None] | None = None,
        metrics_period: float = 60.0,
    ) -> None:
        self.store = store
        self.backfills = backfills
        self.clock = clock
        self.file_gaps = list(file_gaps)
        self.count_cells = count_cells
        self.metrics_period = metrics_period
        #: (batches, seconds) of the latest derivation
        self.derived: tuple[int, float] | None = None

    def today(self) -> date:
        return self.clock.now().date()

    # -- expected gaps ------------------------------------------------------------------------

    async def gaps(self) -> list[ExpectedGap]:
        return [*self.file_gaps, *await self.store.expected_gaps()]

    async def calendar(self) -> ExpectedCalendar:
        return ExpectedCalendar(await self.gaps())

    async def put_gap(self, gap: ExpectedGap) -> bool:
        if any(own.name == gap.name for own in self.file_gaps):
            raise Conflict(
                f"expected gap {gap.name} comes from EXPECTED_GAPS_FILE: change it there",
                data={"name": gap.name},
            )
        return await self.store.put_expected_gap(gap.model_copy(update={"source": "api"}))

    async def delete_gap(self, name: str) -> None:
        if any(own.name == name for own in self.file_gaps):
            raise Conflict(
                f"expected gap {name} comes from EXPECTED_GAPS_FILE: change it there",
                data={"name": name},
            )
        if not await self.store.delete_expected_gap(name):
            raise ExpectedGapNotFound(name)

    # -- reading ------------------------------------------------------------------------------

    def check_read(
        self, symbols: Sequence[str], types: Sequence[str], first: date, last: date
    ) -> None:
        coverage_fill.check_days(
            first, last, self.today(), field="to", ahead=coverage_fill.MAX_AHEAD_DAYS
        )
        coverage_fill.check_size(len(symbols), len(types), first, last)

    async def rows(
        self, symbols: Sequence[str], types: Sequence[str], first: date, last: date
    ) -> list[dict[str, Any]]:
        """One row per (symbol, type), its days as runs (docs/api.md "GET /coverage")."""
        self.check_read(symbols, types, first, last)
        calendar = await self.calendar()
        # the stored runs, not the cells: a year of 100 symbols is a few thousand runs
        by_pair: dict[tuple[str, str], list[coverage.CellRun]] = {}
        for run in await self.store.coverage_runs(symbols, types, first, last):
            by_pair.setdefault((run.symbol, run.type), []).append(run)
        cells = await self._cells_to_split(by_pair, calendar)
        return [
            {
                "symbol": symbol,
                "type": type_,
                "runs": [
                    run.as_dict()
                    for run in coverage.encode_runs(
                        symbol,
                        by_pair.get((symbol, type_), []),
                        first,
                        last,
                        calendar,
                        cells.get((symbol, type_)),
                    )
                ],
            }
            for symbol in symbols
            for type_ in types
        ]

    async def _cells_to_split(
        self,
        by_pair: dict[tuple[str, str], list[coverage.CellRun]],
        calendar: ExpectedCalendar,
    ) -> dict[tuple[str, str], dict[date, coverage.Cell]]:
        """The cells of the runs cut at expected gaps (fillable runs over days of the
        calendar, rare): one read per type, of the days those runs span."""
        split: dict[str, list[coverage.CellRun]] = {}
        for runs in by_pair.values():
            for run in runs:
                if coverage.needs_cells(run, calendar):
                    split.setdefault(run.type, []).append(run)
        cells: dict[tuple[str, str], dict[date, coverage.Cell]] = {}
        for type_, runs in split.items():
            symbols = sorted({run.symbol for run in runs})
            start, end = min(run.start for run in runs), max(run.end for run in runs)
            for cell in await self.store.coverage_cells(symbols, [type_], start, end):
                cells.setdefault((cell.symbol, cell.type), {})[cell.day] = cell
        return cells

    async def summary(
        self, symbols: Sequence[str] | None, types: Sequence[str], first: date, last: date
    ) -> list[dict[str, Any]]:
        """Per (symbol, type): days by state, the share complete (of the days not in the
        expected-gap calendar) and the first and last day to fill."""
        if not symbols:
            found: dict[str, None] = {}
            for type_ in types:
                for symbol in await self.store.coverage_symbols(type_, coverage_fill.MAX_SYMBOLS):
                    found.setdefault(symbol, None)
            symbols = sorted(found)[: coverage_fill.MAX_SYMBOLS]
        out = []
        for row in await self.rows(symbols, types, first, last):
            days: Counter[str] = Counter()
            fillable: list[tuple[date, date]] = []
            for run in row["runs"]:
                start, end = date.fromisoformat(run["from"]), date.fromisoformat(run["to"])
                days[run["state"]] += (end - start).days + 1
                if CellState(run["state"]) in coverage.FILLABLE:
                    fillable.append((start, end))
            expected = sum(days.values()) - days[CellState.EXPECTED_GAP.value]
            out.append(
                {
                    "symbol": row["symbol"],
                    "type": row["type"],
                    "days": {state.value: days[state.value] for state in CellState},
                    "complete_share": round(days[CellState.COMPLETE.value] / expected, 4)
                    if expected
                    else None,
                    "first_gap": fillable[0][0].isoformat() if fillable else None,
                    "last_gap": fillable[-1][1].isoformat() if fillable else None,
                }
            )
        return out

    # -- filling ------------------------------------------------------------------------------

    async def plan(self, request: FillRequest) -> list[FillChunk]:
        """The chunks a fill runs: per (symbol, type), the days neither complete, running nor
        an expected gap, in contiguous runs cut at the chunk's calendar boundaries."""
        request.check(self.today())
        first, last = request.dates
        calendar = await self.calendar()
        settled: dict[tuple[str, str], list[tuple[date, date]]] = {}
        for symbol, type_, start, end in await self.store.coverage_settled(
            request.symbols, request.types, first, last
        ):
            settled.setdefault((symbol, type_), []).append((start, end))
        plan: list[tuple[str, str, list[tuple[date, date]]]] = []
        size = 0
        for symbol in request.symbols:
            for type_ in request.types:
                runs = coverage.fill_runs(
                    symbol, settled.get((symbol, type_), ()), first, last, calendar
                )
                # counted before any is cut: a decade of 1,000 empty symbols by day is refused
                # at once, not after millions of chunks were made
                size += sum(count_chunks(a, b, request.chunk) for a, b in runs)
                if size > coverage_fill.MAX_PLAN:
                    raise InvalidRequest(
                        [
                            {
                                "field": "chunk",
                                "message": f"the plan has more than {coverage_fill.MAX_PLAN} "
                                "chunks; use a larger chunk, fewer symbols or a shorter "
                                "time_range",
                            }
                        ]
                    )
                plan.append((symbol, type_, runs))
        planned: list[FillChunk] = []
        for symbol, type_, runs in plan:
            planned += coverage.plan_fill(symbol, type_, runs, request.chunk)
        return planned

    async def fill(self, request: FillRequest, actor: str | None) -> FillResult:
        planned = await self.plan(request)
        if request.dry_run and request.template is None:
            return FillResult(planned, None)  # a plan needs no template; a given one is checked
        children = coverage_fill.child_requests(request, planned) if planned else []
        if request.dry_run or not children:
            return FillResult(planned, None)
        parent = coverage_fill.fill_parent(request, str(uuid.uuid4()), children, self.clock.now())
        message = (
            f"coverage fill: {len(children)} child queues of {len(planned)} planned chunks"
            f", {request.max_parallel} at a time"
        )
        started = await self.backfills.start_chunks(parent, children, message, actor)
        log.info("coverage fill started", queue_id=started.id, chunks=len(planned), actor=actor)
        return FillResult(planned, started.id)

    # -- the upgrade derivation and the gauges ------------------------------------------------

    async def derive(self, *, force: bool = False) -> int:
        """The ledger of every stored queue, once (an upgrade from a release without it):
        batched, each batch one transaction, and idempotent — a queue whose cells are held is
        skipped, so a crash halfway starts again cheaply. Returns the batches written."""
        if not force and await self.store.coverage_derived():
            return 0
        began, after, batches = time.monotonic(), None, 0
        while True:
            last = await self.store.derive_coverage(after, DERIVE_BATCH)
            if last is None:
                break
            after, batches = last, batches + 1
            await asyncio.sleep(0)  # the API and the dispatcher get their turn between batches
        await self.store.mark_coverage_derived()
        took = time.monotonic() - began
        self.derived = (batches, took)
        log.info("coverage ledger derived", batches=batches, seconds=round(took, 3))
        return batches

    async def run_derivation(self) -> None:
        """`derive`, as a supervised background task: a crash (the store down) runs it again."""
        await self.derive()

    async def run_metrics(self) -> None:
        """The cells-per-state gauges, refreshed every `metrics_period` (a count over the
        ledger, so not on each scrape)."""
        if self.count_cells is None:
            return
        while True:
            self.count_cells(await self.store.coverage_counts())
            await self.clock.sleep_until(self.clock.now() + timedelta(seconds=self.metrics_period))
