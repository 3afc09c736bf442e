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
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from queue_manager.domain import planner
from queue_manager.domain.errors import InvalidRequest
from queue_manager.domain.history import EventKind
from queue_manager.domain.models import Backfill, QueueState, QueueStatus
from queue_manager.domain.requests import (
    PipelineCreate,
    QueueCreate,
    StartFields,
    StartRequest,
    Symbol,
    Symbols,
    field_errors,
    request_form,
)
from queue_manager.domain.state import Outcome, reopen_status, settle
from queue_manager.job_contract import parse_time_range

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


class BackfillRequest(StartFields):
    """`POST /queues/backfill`: a start request (either form) plus `symbols` (instead of
    `symbol`), `max_parallel` and `chunk` (docs/schedules.md#backfill). Validated as a whole,
    each error naming its field; the fields are checked in this order, so `chunk`, last, is
    judged against the range and the symbols."""

    symbol: Symbol | None = Field(  # type: ignore[assignment]
        default=None, description="One symbol, instead of `symbols`.", examples=["BTCUSDT"]
    )
    symbols: Symbols | None = Field(
        default=None,
        validate_default=True,
        description="One child queue per (symbol, chunk); instead of `symbol`. 2 to 20 letters "
        "or digits each (upper-cased), none repeated.",
        examples=[["BTCUSDT", "ETHUSDT"]],
    )
    max_parallel: int = Field(
        default=1,
        ge=1,
        le=MAX_PARALLEL,
        strict=True,
        description=f"How many children run at once: 1 to {MAX_PARALLEL}.",
        examples=[4],
    )
    chunk: Chunk = Field(
        description="day, week (ISO: Monday to Sunday) or month; no longer than `time_range`, "
        f"and at most {MAX_CHILDREN} child queues (symbols times chunks) in all.",
        examples=["month"],
    )

    @field_validator("symbols")
    @classmethod
    def _one_way_to_name_symbols(
        cls, value: list[str] | None, info: ValidationInfo
    ) -> list[str] | None:
        given = info.data.get("symbol")
        if value is None and given is None and "symbol" in info.data:
            raise ValueError("give symbols (a list) or symbol")
        if value is not None and given is not None:
            raise ValueError("give symbols or symbol, not both")
        return value

    @field_validator("chunk")
    @classmethod
    def _chunk_fits(cls, value: Chunk, info: ValidationInfo) -> Chunk:
        time_range = info.data.get("time_range")
        if time_range is None:
            return value  # refused already, on its own
        start, end = parse_time_range(time_range)
        days = (end - start).days + 1
        if days < _MIN_DAYS[value]:
            raise ValueError(
                f"a {value.value} is longer than the time_range ({days} days); use a smaller "
                "chunk or a longer range"
            )
        symbols = info.data.get("symbols") or [None]
        count = len(symbols) * count_chunks(start, end, value)
        if count > MAX_CHILDREN:
            raise ValueError(
                f"makes {count} child queues, more than {MAX_CHILDREN}; use a larger chunk or "
                "split the range"
            )
        return value

    @property
    def all_symbols(self) -> list[str]:
        """The symbols, one child queue each per chunk."""
        return self.symbols or ([self.symbol] if self.symbol else [])

    @property
    def template(self) -> dict[str, Any]:
        """What each child is made of, as its start request, without `symbol` and
        `time_range` (set per child)."""
        return self.model_dump(
            mode="json", exclude_unset=True, exclude={*_OWN_FIELDS, "symbol", "time_range"}
        )

    @property
    def body(self) -> dict[str, Any]:
        """As stored with the parent: what resubmitting it starts again."""
        return self.model_dump(mode="json", exclude_unset=True)

    def child_requests(self) -> list[QueueCreate | PipelineCreate]:
        """One per (symbol, chunk), symbol-major, chunks in date order."""
        start, end = self.dates
        template = self.template
        return [
            _START.validate_python({**template, "symbol": symbol, "time_range": f"{a}:{b}"})
            for symbol in self.all_symbols
            for a, b in chunks(start, end, self.chunk)
        ]

    def parent(self, queue_id: str, now: datetime) -> QueueState:
        start, end = self.dates
        symbols = self.all_symbols
        children = len(symbols) * count_chunks(start, end, self.chunk)
        sample = planner.plan(self.child_requests()[0], queue_id)
        return QueueState(
            id=queue_id,
            symbol=symbols[0],
            type=sample.type,
            loader_type=sample.loader_type,
            time_range=self.time_range,
            start_time=datetime.combine(start, datetime.min.time(), tzinfo=now.tzinfo),
            end_time=datetime.combine(end, datetime.max.time(), tzinfo=now.tzinfo).replace(
                microsecond=0
            ),
            created_at=now,
            updated_at=now,
            priority=self.priority,
            request=self.body,
            status=QueueStatus.PENDING,
            backfill=Backfill(
                chunk=self.chunk.value,
                max_parallel=self.max_parallel,
                symbols=symbols,
                children=children,
                progress=_counts([QueueStatus.QUEUED] * children),
            ),
        )


class BackfillSingle(BackfillRequest, QueueCreate):
    """A backfill of the single form: one loader-producer step per child."""


class BackfillPipeline(BackfillRequest, PipelineCreate):
    """A backfill of the pipeline form: each child runs the steps of `requests`."""


#: the body of `POST /queues/backfill`: either form, told apart as a start request's
BackfillBody = Annotated[
    Annotated[BackfillSingle, Tag("single")] | Annotated[BackfillPipeline, Tag("pipeline")],
    Discriminator(request_form),
]
_BODY: TypeAdapter[BackfillSingle | BackfillPipeline] = TypeAdapter(BackfillBody)
_START: TypeAdapter[QueueCreate | PipelineCreate] = TypeAdapter(StartRequest)


def parse_backfill(data: dict[str, Any]) -> BackfillSingle | BackfillPipeline:
    """A backfill as stored with its parent, read back (to resubmit it)."""
    try:
        return _BODY.validate_python(data)
    except ValidationError as exc:
        raise InvalidRequest(
            field_errors(exc.errors(include_url=False), model=BackfillBody)
        ) from None


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
