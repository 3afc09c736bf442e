"""Backfills (docs/schedules.md#backfill): one long time range cut into calendar chunks, one child
queue per (symbol, chunk), under a parent whose status and progress follow its children."""

from __future__ import annotations

import calendar
from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from queue_manager.domain import planner
from queue_manager.domain.errors import InvalidRequest
from queue_manager.domain.history import EventKind
from queue_manager.domain.models import Backfill, QueueState, QueueStatus
from queue_manager.domain.requests import (
    SYMBOL_RE,
    PipelineCreate,
    QueueCreate,
    StartRequest,
    field_errors,
    request_form,
)
from queue_manager.domain.state import Outcome, reopen_status, settle

MAX_CHILDREN = 2000
MAX_PARALLEL = 100


class Chunk(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


#: the shortest range a chunk may cut: a chunk longer than the range is a mistake
_MIN_DAYS = {Chunk.DAY: 1, Chunk.WEEK: 7, Chunk.MONTH: 28}
_OWN_FIELDS = ("chunk", "symbols", "max_parallel")


def chunks(start: date, end: date, chunk: Chunk) -> list[tuple[date, date]]:
    """Calendar-aligned pieces of [start, end]: days, ISO weeks (Monday to Sunday) or months,
    the first and last clipped to the range (never a date past `end`, so 9999-12-31 is fine)."""
    pieces = []
    at = start
    while True:
        if chunk is Chunk.DAY:
            last = at
        elif chunk is Chunk.WEEK:
            last = at + timedelta(days=min(6 - at.weekday(), (end - at).days))
        else:
            last = at.replace(day=calendar.monthrange(at.year, at.month)[1])
        last = min(last, end)
        pieces.append((at, last))
        if last >= end:
            return pieces
        at = last + timedelta(days=1)


def count_chunks(start: date, end: date, chunk: Chunk) -> int:
    """len(chunks(start, end, chunk)), without cutting them (a range of centuries by day)."""
    if chunk is Chunk.DAY:
        return (end - start).days + 1
    if chunk is Chunk.WEEK:
        return (end - (start - timedelta(days=start.weekday()))).days // 7 + 1
    return (end.year * 12 + end.month) - (start.year * 12 + start.month) + 1


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


class _Backfill(BaseModel):
    """What a backfill adds to a start request (docs/schedules.md#backfill)."""

    chunk: Chunk = Field(description="day, week (ISO: Monday to Sunday) or month")
    symbols: list[Annotated[str, BeforeValidator(_upper)]] | None = Field(
        default=None,
        min_length=1,
        description="One child queue per (symbol, chunk); instead of `symbol`.",
        examples=[["BTCUSDT", "ETHUSDT"]],
    )
    max_parallel: int = Field(
        default=1,
        ge=1,
        le=MAX_PARALLEL,
        strict=True,
        description="How many children run at once.",
    )
    symbol: str | None = Field(
        default=None, description="One symbol, instead of `symbols`.", examples=["BTCUSDT"]
    )

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        bad = [s for s in value if not SYMBOL_RE.match(s)]
        if bad:
            raise ValueError(f"{bad[0]!r}: must be 2 to 20 letters or digits")
        if len(set(value)) != len(value):
            raise ValueError("must not repeat a symbol")
        return value


class BackfillSingle(_Backfill, QueueCreate):
    """A backfill of the single form."""


class BackfillPipeline(_Backfill, PipelineCreate):
    """A backfill of the pipeline form."""


#: the body of `POST /queues/backfill`: a start request (either form) plus `chunk`, `symbols`
#: and `max_parallel`
BackfillBody = Annotated[
    Annotated[BackfillSingle, Tag("single")] | Annotated[BackfillPipeline, Tag("pipeline")],
    Discriminator(request_form),
]
_BODY: TypeAdapter[BackfillSingle | BackfillPipeline] = TypeAdapter(BackfillBody)


def parse_backfill(data: dict[str, Any]) -> BackfillRequest:
    """A backfill as stored with its parent, read back (to resubmit it)."""
    try:
        body = _BODY.validate_python(data)
    except ValidationError as exc:
        raise InvalidRequest(
            field_errors(exc.errors(include_url=False), model=BackfillBody)
        ) from None
    return BackfillRequest(body)


class BackfillRequest:
    """`POST /queues/backfill`: a start request (either form) plus `chunk`, `symbols` and
    `max_parallel`; validated as a whole, errors naming the field."""

    def __init__(self, body: BackfillSingle | BackfillPipeline) -> None:
        errors: list[dict[str, str]] = []
        self.chunk = body.chunk
        self.max_parallel = body.max_parallel
        if body.symbols is None and body.symbol is None:
            errors.append({"field": "symbols", "message": "give symbols (a list) or symbol"})
        if body.symbols is not None and "symbol" in body.model_fields_set:
            errors.append({"field": "symbol", "message": "give symbols or symbol, not both"})
        self.symbols = body.symbols or ([body.symbol] if body.symbol else [])
        #: what each child is made of, as its start request; `symbol` and `time_range` are set
        #: per child
        self.template = body.model_dump(mode="json", exclude_unset=True, exclude=set(_OWN_FIELDS))
        self.template["symbol"] = self.symbols[0] if self.symbols else "BTCUSDT"
        self.request: QueueCreate | PipelineCreate | None = None
        try:
            self.request = TypeAdapter(StartRequest).validate_python(self.template)
        except ValidationError as exc:
            errors += field_errors(exc.errors(include_url=False), model=StartRequest)
        if self.request is not None:
            self._check_range(errors)
        if errors:
            raise InvalidRequest(errors)
        #: as stored with the parent: what resubmitting it starts again
        self.body = body.model_dump(mode="json", exclude_unset=True)

    def _check_range(self, errors: list[dict[str, str]]) -> None:
        assert self.request is not None
        start, end = self.request.dates
        days = (end - start).days + 1
        if days < _MIN_DAYS[self.chunk]:
            errors.append(
                {
                    "field": "chunk",
                    "message": f"a {self.chunk.value} is longer than the time_range "
                    f"({days} days); use a smaller chunk or a longer range",
                }
            )
            return
        count = len(self.symbols) * count_chunks(start, end, self.chunk)
        if count > MAX_CHILDREN:
            errors.append(
                {
                    "field": "chunk",
                    "message": f"makes {count} child queues, more than {MAX_CHILDREN}; "
                    "use a larger chunk or split the range",
                }
            )

    def child_requests(self) -> list[QueueCreate | PipelineCreate]:
        """One per (symbol, chunk), symbol-major, chunks in date order."""
        assert self.request is not None
        start, end = self.request.dates
        adapter: TypeAdapter[QueueCreate | PipelineCreate] = TypeAdapter(StartRequest)
        return [
            adapter.validate_python({**self.template, "symbol": symbol, "time_range": f"{a}:{b}"})
            for symbol in self.symbols
            for a, b in chunks(start, end, self.chunk)
        ]

    def parent(self, queue_id: str, now: datetime) -> QueueState:
        assert self.request is not None
        start, end = self.request.dates
        children = len(self.symbols) * count_chunks(start, end, self.chunk)
        sample = planner.plan(self.child_requests()[0], queue_id)
        return QueueState(
            id=queue_id,
            symbol=self.symbols[0],
            type=sample.type,
            loader_type=sample.loader_type,
            time_range=self.request.time_range,
            start_time=datetime.combine(start, datetime.min.time(), tzinfo=now.tzinfo),
            end_time=datetime.combine(end, datetime.max.time(), tzinfo=now.tzinfo).replace(
                microsecond=0
            ),
            created_at=now,
            updated_at=now,
            priority=self.request.priority,
            request=self.body,
            status=QueueStatus.PENDING,
            backfill=Backfill(
                chunk=self.chunk.value,
                max_parallel=self.max_parallel,
                symbols=self.symbols,
                children=children,
                progress=_counts([QueueStatus.QUEUED] * children),
            ),
        )


def _counts(statuses: Iterable[QueueStatus]) -> dict[str, int]:
    seen = Counter(statuses)
    return {status.value: seen.get(status, 0) for status in QueueStatus}


def refresh(parent: QueueState, children: list[QueueState], now: datetime) -> Outcome:
    """Recount the parent from its children (read in the same transaction)."""
    out = Outcome()
    if parent.backfill is None:
        return out
    progress = _counts(child.status for child in children)
    records = sum(child.records_written for child in children)
    if progress != parent.backfill.progress or records != parent.records_written:
        parent.backfill.progress = progress
        parent.records_written = max(parent.records_written, records)
        stamps = [c.last_loaded_timestamp for c in children if c.last_loaded_timestamp]
        if stamps:
            parent.last_loaded_timestamp = max(stamps)
        starts = [c.started_at for c in children if c.started_at]
        if parent.started_at is None and starts:
            parent.started_at = min(starts)
        out.changed = True
    return settle(parent, now, out)


def reopen(parent: QueueState, children: list[QueueState], retried: int, now: datetime) -> Outcome:
    """After its unfinished children were retried: the parent runs again."""
    out = Outcome(changed=True)
    out.record(EventKind.COMMAND, now, to="retry", message=f"{retried} children run again")
    parent.retries += 1
    parent.error_message = None
    parent.stop_requested_at = parent.stop_deadline = parent.finished_at = None
    parent.stopped_by = None
    out.merge(refresh(parent, children, now))
    reopen_status(parent, now, out)
    return settle(parent, now, out)
