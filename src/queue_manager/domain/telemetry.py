"""Parsing worker telemetry (docs/worker-protocol.md) into one validated event, whatever shape it
came in."""

from __future__ import annotations

import functools
import math
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import msgspec
import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from queue_manager.domain.models import StepStatus
from queue_manager.domain.spans import MAX_SPANS
from queue_manager.job_contract import CONTROL_TELEMETRY_TYPE, Telemetry
from queue_manager.job_contract import Reported as Reported  # the domain reads reports as sent

MAX_MESSAGE_BYTES = 256 * 1024
MAX_TEXT = 2000
MAX_RECORDS = 10**15
#: the longest Retry-After taken from a worker: a 418 ban lasts up to 3 days
MAX_RETRY_AFTER = 7 * 86400.0
MAX_ERROR_CLASS = 32
QUEUE_ID_PATTERN = r"^[A-Za-z0-9\-]+$"


class Source(StrEnum):
    EVENTS = "queue-events"
    CONTROL = "queue-control"
    HTTP = "http"


def step_status(reported: Reported) -> StepStatus | None:
    """The step status a report moves its step to; None for reports that move nothing."""
    return _TO_STEP.get(reported)


_TO_STEP = {
    Reported.STARTED: StepStatus.STARTED,
    Reported.LOADING: StepStatus.LOADING,
    Reported.FINISHED: StepStatus.FINISHED,
    Reported.ERROR: StepStatus.ERROR,
    Reported.INTERRUPTED: StepStatus.STOPPED,
}


class SpanReport(msgspec.Struct, rename={"start": "from", "end": "to"}):
    """`{"from": ISO instant, "to": ISO instant}` of a `coverage` report."""

    start: datetime
    end: datetime


class CoverageReport(msgspec.Struct, kw_only=True):
    """The optional `coverage` of a report (docs/worker-protocol.md): the spans its step loaded
    into the store so far, and the gaps it saw at the source."""

    loaded: Annotated[list[SpanReport], msgspec.Meta(max_length=MAX_SPANS)] = []
    gaps: Annotated[list[SpanReport], msgspec.Meta(max_length=MAX_SPANS)] = []


class TelemetryEvent(
    msgspec.Struct,
    kw_only=True,
    # holds atoms, and a `coverage` tree that never points back: never a cycle, so a batch of
    # 50,000 adds no GC work
    gc=False,
    rename={"status": "event", "step_type": "type"},
):
    """One validated report. Only these fields are kept: workers also send user names and URLs
    we must not store. A plain struct, not a model: the dispatcher handles hundreds of thousands
    a second. The common worker message decodes straight into it (`_fast`); the constraints
    below are checked there, and `_Event` checks them on every other path."""

    # The pattern is checked once per distinct id (`_queue_id_shaped`), not here: a regex per
    # message was a third of the decoding.
    queue_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    status: Reported
    producer: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    records_written: Annotated[int, msgspec.Meta(ge=0, le=MAX_RECORDS)] | None = None
    last_loaded_timestamp: datetime | None = None
    finished: bool | None = None
    message: str | None = None
    error_message: str | None = None
    sent_at: datetime | None = None
    step_type: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    #: optional on `error` (docs/worker-protocol.md, docs/operations.md "Error classes")
    error_class: Annotated[str, msgspec.Meta(max_length=MAX_ERROR_CLASS)] | None = None
    http_status: Annotated[int, msgspec.Meta(ge=100, le=599)] | None = None
    retry_after: Annotated[float, msgspec.Meta(ge=0, le=MAX_RETRY_AFTER)] | None = None
    #: optional: the step's exact coverage (docs/coverage.md)
    coverage: CoverageReport | None = None


class _Span(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")

    @field_validator("start", "end", mode="after")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class _Coverage(BaseModel):
    loaded: list[_Span] = Field(default_factory=list, max_length=MAX_SPANS)
    gaps: list[_Span] = Field(default_factory=list, max_length=MAX_SPANS)


def _coverage_of(value: Any) -> CoverageReport | None:
    """An optional hint: a `coverage` that is not what docs/worker-protocol.md says is dropped,
    never the report it came with."""
    if value is None:
        return None
    try:
        found = _Coverage.model_validate(value)
    except ValidationError:
        return None
    return CoverageReport(
        loaded=[SpanReport(s.start, s.end) for s in found.loaded],
        gaps=[SpanReport(s.start, s.end) for s in found.gaps],
    )


class _Event(BaseModel):
    """The full rules, for every shape the fast path below does not take."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    queue_id: str = Field(min_length=1, max_length=64, pattern=QUEUE_ID_PATTERN)
    status: Reported
    producer: str | None = Field(default=None, max_length=200)
    records_written: int | None = Field(default=None, ge=0, le=MAX_RECORDS)
    last_loaded_timestamp: datetime | None = None
    finished: bool | None = None
    message: str | None = None
    error_message: str | None = None
    sent_at: datetime | None = None
    step_type: str | None = Field(default=None, max_length=64)
    error_class: str | None = Field(default=None, max_length=MAX_ERROR_CLASS)
    http_status: int | None = Field(default=None, ge=100, le=599)
    retry_after: float | None = Field(default=None, ge=0, le=MAX_RETRY_AFTER)

    @field_validator("message", "error_message", mode="before")
    @classmethod
    def _clip(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value[:MAX_TEXT]
        return value

    @field_validator("error_class", "http_status", "retry_after", mode="before")
    @classmethod
    def _optional(cls, value: Any, info: ValidationInfo) -> Any:
        """Optional hints: one that makes no sense is dropped, never the report it came with."""
        if info.field_name == "error_class":
            return value[:MAX_ERROR_CLASS] if isinstance(value, str) else None
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        if not math.isfinite(number) or isinstance(value, bool):
            return None
        if info.field_name == "http_status":
            return int(number) if 100 <= number <= 599 else None
        return min(number, MAX_RETRY_AFTER) if number >= 0 else None

    @field_validator("sent_at", "last_loaded_timestamp", mode="after")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return _utc(value)

    @field_validator("sent_at", "last_loaded_timestamp", mode="before")
    @classmethod
    def _epoch(cls, value: Any) -> Any:
        # Workers send ISO strings or epoch seconds / milliseconds.
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = value / 1000 if value > 10**11 else value
            return datetime.fromtimestamp(seconds, UTC)
        return value


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


_decode_worker_message = msgspec.json.Decoder(TelemetryEvent).decode


@functools.lru_cache(maxsize=65536)
def _queue_id_shaped(queue_id: str) -> bool:
    """A batch holds hundreds of reports per queue: the id's pattern is matched once."""
    return _QUEUE_ID.fullmatch(queue_id) is not None


_QUEUE_ID = re.compile(QUEUE_ID_PATTERN.removeprefix("^").removesuffix("$"))


def _fast(raw: bytes) -> TelemetryEvent | None:
    """The common worker message, typed strictly, without building a model; None when the full
    rules must look. Anything unusual — epoch timestamps, `status` instead of `event`, numbers
    as strings, text to strip or clip — fails here and takes the full
    path, so the two paths cannot disagree on what a message means."""
    try:
        event = _decode_worker_message(raw)
    except msgspec.DecodeError:
        return None
    if event.sent_at is None:
        return None  # perhaps an older worker's `timestamp`, which the full path reads
    if not _queue_id_shaped(event.queue_id):
        return None
    if event.producer and (event.producer[0].isspace() or event.producer[-1].isspace()):
        return None
    if event.message is not None or event.error_message is not None or event.step_type:
        for text in (event.message, event.error_message, event.step_type, event.error_class):
            if text and (text[0].isspace() or text[-1].isspace() or len(text) > MAX_TEXT):
                return None
    if event.coverage is not None:
        spans = (*event.coverage.loaded, *event.coverage.gaps)
        if any(s.start.tzinfo is None or s.end.tzinfo is None for s in spans):
            return None  # the full path reads naive instants as UTC
    if event.sent_at.tzinfo is None:
        event.sent_at = event.sent_at.replace(tzinfo=UTC)
    if event.last_loaded_timestamp is not None and event.last_loaded_timestamp.tzinfo is None:
        event.last_loaded_timestamp = event.last_loaded_timestamp.replace(tzinfo=UTC)
    return event


_EVENTS = Source.EVENTS


class Rejected(Exception):
    """A message that can never be applied; `reason` labels the rejection metric."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class Ignored(Exception):
    """A well-formed message that is not telemetry (a command on queue-control)."""


def parse(raw: bytes | dict[str, Any], source: Source) -> TelemetryEvent:
    if type(raw) is bytes and source is _EVENTS and len(raw) <= MAX_MESSAGE_BYTES:
        event = _fast(raw)
        if event is not None:
            return event
    if isinstance(raw, bytes | bytearray):
        if len(raw) > MAX_MESSAGE_BYTES:
            raise Rejected("too_large", f"{len(raw)} bytes")
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise Rejected("invalid_json", str(exc)) from None
    else:
        data = raw
    if not isinstance(data, dict):
        raise Rejected("not_an_object")
    t = Telemetry
    if source is Source.CONTROL:
        if data.get(t.TYPE) != CONTROL_TELEMETRY_TYPE:
            raise Ignored
        fields = {
            "queue_id": data.get(t.QUEUE_ID),
            "status": data.get(t.STATUS),
            "producer": data.get(t.PRODUCER),
            "records_written": data.get(t.RECORDS_WRITTEN),
            "error_message": data.get(t.ERROR_MESSAGE),
            "sent_at": data.get(t.SENT_AT) or data.get(t.FINISHED_AT) or data.get(t.TIMESTAMP),
            "last_loaded_timestamp": data.get(t.LAST_LOADED_TIMESTAMP),
            "error_class": data.get(t.ERROR_CLASS),
            "http_status": data.get(t.HTTP_STATUS),
            "retry_after": data.get(t.RETRY_AFTER),
        }
    else:
        status = data.get(t.EVENT) if data.get(t.EVENT) is not None else data.get(t.STATUS)
        if status is None and data.get(t.FINISHED) is True:
            status = Reported.FINISHED.value
        fields = {
            "queue_id": data.get(t.QUEUE_ID),
            "status": status,
            "producer": data.get(t.PRODUCER),
            "records_written": data.get(t.RECORDS_WRITTEN),
            "last_loaded_timestamp": data.get(t.LAST_LOADED_TIMESTAMP),
            "finished": data.get(t.FINISHED),
            "message": data.get(t.MESSAGE),
            "error_message": data.get(t.ERROR_MESSAGE),
            "sent_at": data.get(t.SENT_AT) or data.get(t.TIMESTAMP),
            "step_type": data.get(t.TYPE),
            "error_class": data.get(t.ERROR_CLASS),
            "http_status": data.get(t.HTTP_STATUS),
            "retry_after": data.get(t.RETRY_AFTER),
        }
    try:
        valid = _Event.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "message"
        reason = f"invalid_{field}" if field in _KNOWN else "invalid_field"
        raise Rejected(reason, first["msg"]) from None
    return TelemetryEvent(**dict(valid), coverage=_coverage_of(data.get(t.COVERAGE)))


_KNOWN = {"queue_id", "status", "records_written", "sent_at", "producer"}
