"""Parsing worker telemetry (docs/worker-protocol.md) into one validated event, whatever shape it
came in."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from queue_manager.domain.models import StepStatus
from queue_manager.job_contract import CONTROL_TELEMETRY_TYPE, Telemetry
from queue_manager.job_contract import Reported as Reported  # the domain reads reports as sent

MAX_MESSAGE_BYTES = 256 * 1024
MAX_TEXT = 2000


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


class TelemetryEvent(BaseModel):
    """Only these fields are kept: workers also send user names and URLs we must not store."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    queue_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\-]+$")
    status: Reported
    producer: str | None = Field(default=None, max_length=200)
    records_written: int | None = Field(default=None, ge=0, le=10**15)
    last_loaded_timestamp: datetime | None = None
    finished: bool | None = None
    message: str | None = None
    error_message: str | None = None
    sent_at: datetime | None = None
    step_type: str | None = Field(default=None, max_length=64)

    @field_validator("message", "error_message", mode="before")
    @classmethod
    def _clip(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value[:MAX_TEXT]
        return value

    @field_validator("sent_at", "last_loaded_timestamp", mode="after")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @field_validator("sent_at", "last_loaded_timestamp", mode="before")
    @classmethod
    def _epoch(cls, value: Any) -> Any:
        # Workers send ISO strings or epoch seconds / milliseconds.
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = value / 1000 if value > 10**11 else value
            return datetime.fromtimestamp(seconds, UTC)
        return value


class Rejected(Exception):
    """A message that can never be applied; `reason` labels the rejection metric."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class Ignored(Exception):
    """A well-formed message that is not telemetry (a command on queue-control)."""


def parse(raw: bytes | dict[str, Any], source: Source) -> TelemetryEvent:
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
        }
    try:
        return TelemetryEvent.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "message"
        reason = f"invalid_{field}" if field in _KNOWN else "invalid_field"
        raise Rejected(reason, first["msg"]) from None


_KNOWN = {"queue_id", "status", "records_written", "sent_at", "producer"}
