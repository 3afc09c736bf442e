"""What a client asks of the coverage ledger (docs/coverage.md): which cells to read, and a fill
— the request, its limits, and the backfill of only the planned chunks it becomes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

from queue_manager.domain import planner
from queue_manager.domain.backfill import MAX_CHILDREN, MAX_PARALLEL, Chunk
from queue_manager.domain.coverage import FillChunk, producing_steps
from queue_manager.domain.errors import InvalidRequest
from queue_manager.domain.models import Backfill, QueueState, QueueStatus
from queue_manager.domain.requests import (
    PipelineCreate,
    QueueCreate,
    StartRequest,
    Symbols,
    TimeRange,
    field_errors,
    no_repeats,
)
from queue_manager.job_contract import TIME_RANGE_FORMAT, parse_time_range

#: the longest range a read or a fill takes: ten years
MAX_DAYS = 3660
#: how far past today a read may look (the calendar of this year and the next)
MAX_AHEAD_DAYS = 366
MAX_SYMBOLS = 1000
MAX_TYPES = 10
#: symbols x types x days one read may return, run-length encoded
MAX_CELLS = 1_500_000
#: chunks one plan may hold (a dry run answers them all)
MAX_PLAN = 100_000

DataType = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]{0,47}$",
        description="A full data type, such as api_candles_5m: 1 to 48 lower-case letters, "
        "digits or '_', starting with a letter.",
        examples=["api_candles_5m"],
    ),
]
DataTypes = Annotated[
    list[DataType], Field(min_length=1, max_length=MAX_TYPES), AfterValidator(no_repeats)
]


def check_days(first: date, last: date, today: date, *, field: str, ahead: int) -> None:
    """The rules of a range both reads and fills share; InvalidRequest naming `field`."""
    if first > last:
        raise InvalidRequest([{"field": field, "message": "starts after it ends"}])
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidRequest(
            [{"field": field, "message": f"longer than {MAX_DAYS} days; ask in pieces"}]
        )
    if last > today + timedelta(days=ahead):
        when = "today" if ahead == 0 else f"{ahead} days from today"
        raise InvalidRequest(
            [{"field": field, "message": f"ends after {when} ({today + timedelta(days=ahead)})"}]
        )


def check_size(symbols: int, types: int, first: date, last: date) -> None:
    cells = symbols * types * ((last - first).days + 1)
    if cells > MAX_CELLS:
        raise InvalidRequest(
            [
                {
                    "field": "symbol",
                    "message": f"{cells} cells (symbols x types x days), more than {MAX_CELLS}; "
                    "ask for fewer symbols or a shorter range",
                }
            ]
        )


class FillRequest(BaseModel):
    """`POST /coverage/fill` (docs/coverage.md)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    symbols: Symbols = Field(
        max_length=MAX_SYMBOLS,
        description=f"1 to {MAX_SYMBOLS} symbols, none repeated (upper-cased).",
        examples=[["BTCUSDT", "ETHUSDT"]],
    )
    types: DataTypes = Field(
        description=f"1 to {MAX_TYPES} data types, none repeated.", examples=[["api_candles_5m"]]
    )
    time_range: TimeRange = Field(
        description=f"{TIME_RANGE_FORMAT}: the days to fill, at most {MAX_DAYS}, none after "
        "today (UTC).",
        examples=["2024-01-01:2024-06-30"],
    )
    chunk: Chunk = Field(
        default=Chunk.MONTH,
        description="How the missing runs are cut into child queues: day, week (ISO) or month.",
    )
    max_parallel: int = Field(
        default=1, ge=1, le=MAX_PARALLEL, strict=True, description="Children running at once."
    )
    template: dict[str, Any] | None = Field(
        default=None,
        description="What each child runs: a start request (either form) without `symbol` and "
        "`time_range`. Default, for one type: the single form of that type.",
        examples=[{"type": "api_candles_5m"}],
    )
    dry_run: bool = Field(default=False, description="Only answer the plan; start nothing.")

    @property
    def dates(self) -> tuple[date, date]:
        return parse_time_range(self.time_range)

    def check(self, today: date) -> None:
        first, last = self.dates
        check_days(first, last, today, field="time_range", ahead=0)

    def child_template(self) -> dict[str, Any]:
        if self.template is not None:
            return self.template
        if len(self.types) != 1:
            raise InvalidRequest(
                [{"field": "template", "message": "required when filling more than one type"}]
            )
        return {"type": self.types[0]}


_START: TypeAdapter[QueueCreate | PipelineCreate] = TypeAdapter(StartRequest)


def child_requests(
    request: FillRequest, planned: Sequence[FillChunk]
) -> list[QueueCreate | PipelineCreate]:
    """One child per planned (symbol, time range) — chunks of several types over the same days
    are one child, the template loading them all. InvalidRequest naming `template.<field>`
    when the template is no start request, or loads none of a planned type."""
    template = request.child_template()
    for own in ("symbol", "symbols", "time_range"):
        if own in template:
            raise InvalidRequest(
                [{"field": f"template.{own}", "message": "set per child: leave it out"}]
            )
    seen: dict[tuple[str, str], None] = {}
    for piece in planned:
        seen.setdefault((piece.symbol, piece.time_range), None)
    children = []
    for symbol, time_range in seen:
        try:
            child = _START.validate_python({**template, "symbol": symbol, "time_range": time_range})
        except ValidationError as exc:
            errors = field_errors(exc.errors(include_url=False), prefix="template")
            raise InvalidRequest(errors) from None
        children.append(child)
    if children:
        sample = planner.plan(children[0], "0" * 32)
        loads = {step.type for step in producing_steps(sample)}
        wanted = {piece.type for piece in planned}
        if not wanted <= loads:
            raise InvalidRequest(
                [
                    {
                        "field": "template",
                        "message": f"loads {', '.join(sorted(loads)) or 'nothing'}, not "
                        f"{', '.join(sorted(wanted - loads))}",
                    }
                ]
            )
    if len(children) > MAX_CHILDREN:
        raise InvalidRequest(
            [
                {
                    "field": "chunk",
                    "message": f"the plan makes {len(children)} child queues, more than "
                    f"{MAX_CHILDREN}; use a larger chunk or a shorter time_range",
                }
            ]
        )
    return children


def fill_parent(
    request: FillRequest,
    queue_id: str,
    children: Sequence[QueueCreate | PipelineCreate],
    now: datetime,
) -> QueueState:
    """The parent of a fill's backfill: it counts exactly the planned children."""
    sample = planner.plan(children[0], queue_id)
    first, last = request.dates
    symbols = list(dict.fromkeys(child.symbol for child in children))
    return QueueState(
        id=queue_id,
        symbol=symbols[0],
        type=sample.type,
        loader_type=sample.loader_type,
        time_range=request.time_range,
        start_time=datetime.combine(first, time.min, UTC),
        end_time=datetime.combine(last, time.max, UTC).replace(microsecond=0),
        created_at=now,
        updated_at=now,
        status=QueueStatus.PENDING,
        backfill=Backfill(
            chunk=request.chunk.value,
            max_parallel=request.max_parallel,
            symbols=symbols,
            children=len(children),
            progress={
                status.value: len(children) if status is QueueStatus.QUEUED else 0
                for status in QueueStatus
            },
        ),
    )
