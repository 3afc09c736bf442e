"""Backfills (docs/schedules.md#backfill): one long time range cut into calendar chunks, one child
queue per (symbol, chunk), under a parent whose status and progress follow its children."""

from __future__ import annotations

import calendar
from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import TypeAdapter, ValidationError

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
    the first and last clipped to the range."""
    pieces = []
    at = start
    while at <= end:
        if chunk is Chunk.DAY:
            last = at
        elif chunk is Chunk.WEEK:
            last = at + timedelta(days=6 - at.weekday())
        else:
            last = at.replace(day=calendar.monthrange(at.year, at.month)[1])
        pieces.append((at, min(last, end)))
        at = min(last, end) + timedelta(days=1)
    return pieces


class BackfillRequest:
    """`POST /queues/backfill`: a start request (either form) plus `chunk`, `symbols` and
    `max_parallel`; validated as a whole, errors naming the field."""

    def __init__(self, body: dict[str, Any]) -> None:
        errors: list[dict[str, str]] = []
        self.chunk = _chunk(body.get("chunk"), errors)
        self.max_parallel = _max_parallel(body.get("max_parallel", 1), errors)
        self.symbols = _symbols(body, errors)
        template = {k: v for k, v in body.items() if k not in _OWN_FIELDS}
        template.setdefault("symbol", self.symbols[0] if self.symbols else "BTCUSDT")
        self.template = template
        self.request: QueueCreate | PipelineCreate | None = None
        try:
            self.request = TypeAdapter(StartRequest).validate_python(template)
        except ValidationError as exc:
            errors += field_errors(exc.errors(include_url=False))
        if self.request is not None and self.chunk is not None:
            self._check_range(errors)
        if errors:
            raise InvalidRequest(errors)
        self.body = body

    def _check_range(self, errors: list[dict[str, str]]) -> None:
        assert self.request is not None and self.chunk is not None
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
        count = len(self.symbols) * len(chunks(start, end, self.chunk))
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
        assert self.request is not None and self.chunk is not None
        start, end = self.request.dates
        adapter: TypeAdapter[QueueCreate | PipelineCreate] = TypeAdapter(StartRequest)
        return [
            adapter.validate_python({**self.template, "symbol": symbol, "time_range": f"{a}:{b}"})
            for symbol in self.symbols
            for a, b in chunks(start, end, self.chunk)
        ]

    def parent(self, queue_id: str, now: datetime) -> QueueState:
        assert self.request is not None and self.chunk is not None
        start, end = self.request.dates
        children = len(self.symbols) * len(chunks(start, end, self.chunk))
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


def _chunk(value: Any, errors: list[dict[str, str]]) -> Chunk | None:
    try:
        return Chunk(value)
    except ValueError:
        errors.append({"field": "chunk", "message": "must be day, week or month"})
        return None


def _max_parallel(value: Any, errors: list[dict[str, str]]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PARALLEL:
        errors.append(
            {"field": "max_parallel", "message": f"must be an integer from 1 to {MAX_PARALLEL}"}
        )
        return 1
    return value


def _symbols(body: dict[str, Any], errors: list[dict[str, str]]) -> list[str]:
    raw = body.get("symbols")
    if raw is None:
        single = body.get("symbol")
        if not isinstance(single, str):
            errors.append({"field": "symbols", "message": "give symbols (a list) or symbol"})
            return []
        raw = [single]
    if not isinstance(raw, list) or not raw or not all(isinstance(s, str) for s in raw):
        errors.append({"field": "symbols", "message": "must be a non-empty list of symbols"})
        return []
    upper = [s.strip().upper() for s in raw]
    bad = [s for s in upper if not SYMBOL_RE.match(s)]
    if bad:
        errors.append(
            {"field": "symbols", "message": f"{bad[0]!r}: must be 2 to 20 letters or digits"}
        )
    elif len(set(upper)) != len(upper):
        errors.append({"field": "symbols", "message": "must not repeat a symbol"})
    if "symbol" in body and "symbols" in body:
        errors.append({"field": "symbol", "message": "give symbols or symbol, not both"})
    return upper


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
