"""Runs that heal themselves (docs/pipelines.md "Retry"): the error classes a step's failure
falls into, a step's retry policy, and the attempts it made.

Pure rules: services decide *when* to call them; nothing here reads a clock or a store."""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class ErrorClass(StrEnum):
    #: HTTP 429 or 418 from the exchange: wait as long as it says, and hold the rate-limit group
    RATE_LIMITED = "rate_limited"
    #: HTTP 5xx or a connection error: the outcome is unknown, retry (workers are idempotent)
    TRANSIENT = "transient"
    #: the platform lost the worker (OOMKilled, Evicted, node lost)
    INFRASTRUCTURE = "infrastructure"
    #: it can never run as asked (image pull error, bad configuration): never retried
    CONFIGURATION = "configuration"
    #: ran longer than its `timeout`
    TIMEOUT = "timeout"
    #: launched but never started within its `pending_timeout`
    PENDING = "pending"
    #: alive but silent past `stall_after`, and no `pong` within `ping_timeout`
    STALLED = "stalled"
    #: anything else
    ERROR = "error"


#: what a step retries on when its request names no classes
DEFAULT_RETRY_ON = (
    ErrorClass.RATE_LIMITED,
    ErrorClass.TRANSIENT,
    ErrorClass.INFRASTRUCTURE,
    ErrorClass.TIMEOUT,
    ErrorClass.STALLED,
)
#: classes no policy may retry: the same request fails the same way
NEVER_RETRIED = frozenset({ErrorClass.CONFIGURATION})


class Backoff(BaseModel):
    model_config = ConfigDict(extra="forbid")

    initial: float = Field(default=2.0, gt=0, le=3600, description="seconds before the 1st retry")
    factor: float = Field(default=2.0, ge=1, le=10, description="growth per retry")
    max: float = Field(default=300.0, gt=0, le=86400, description="the longest wait, seconds")
    jitter: float = Field(default=0.1, ge=0, le=1, description="random share added or taken")

    def delay(self, retry: int, rand: random.Random | None = None) -> float:
        """Seconds before retry number `retry` (1 for the first)."""
        base = min(self.initial * self.factor ** max(retry - 1, 0), self.max)
        spread = (rand or random).uniform(-self.jitter, self.jitter)
        return max(base * (1 + spread), 0.0)


class RetryPolicy(BaseModel):
    """A step's `retry` (docs/pipelines.md). `limit` counts retries, not attempts."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=0, ge=0, le=100)
    backoff: Backoff = Field(default_factory=Backoff)
    on: list[ErrorClass] = Field(default_factory=lambda: list(DEFAULT_RETRY_ON), max_length=8)

    def retries(self, error_class: ErrorClass, retries_done: int) -> bool:
        return (
            error_class not in NEVER_RETRIED
            and error_class in self.on
            and retries_done < self.limit
        )

    def next_at(
        self,
        now: datetime,
        retry: int,
        retry_after: float | None,
        rand: random.Random | None = None,
    ) -> datetime:
        """When retry number `retry` may start: never before the exchange's Retry-After."""
        wait = max(self.backoff.delay(retry, rand), retry_after or 0.0)
        return now + timedelta(seconds=wait)


class Attempt(BaseModel):
    """One attempt of a step, as `attempts_log` shows it."""

    # `class` in the API and in the store (a Python keyword, hence the attribute's name)
    model_config = ConfigDict(
        validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    attempt: int
    started_at: datetime | None = None
    ended_at: datetime | None = None
    #: how it ended; None while it runs or when it finished
    error_class: ErrorClass | None = Field(default=None, alias="class")
    reason: str | None = None
    #: when the next attempt starts, if this one is retried
    retry_at: datetime | None = None


# -- the classification rule (docs/operations.md "Error classes") --------------------------------

#: `HTTP 429`, `status 503`, `status code: 418`, `429 Too Many Requests` ... in an error message
_HTTP_STATUS = re.compile(
    r"(?:\bhttp(?:\s*status)?|\bstatus(?:\s*code)?|\bcode)\s*[:=]?\s*(\d{3})\b"
    r"|\b(\d{3})\s+(?:too many requests|i'm a teapot|internal server error|bad gateway"
    r"|service unavailable|gateway time-?out)",
    re.IGNORECASE,
)
_CONNECTION = re.compile(
    r"connection (?:reset|refused|aborted|error)|timed? ?out|temporarily unavailable"
    r"|name resolution|ECONNRESET|ECONNREFUSED",
    re.IGNORECASE,
)
_RETRY_AFTER = re.compile(r"retry[-_ ]?after[\"']?\s*[:=]?\s*(\d+(?:\.\d+)?)", re.IGNORECASE)


def http_status_in(message: str | None) -> int | None:
    if not message:
        return None
    match = _HTTP_STATUS.search(message[:2000])
    if match is None:
        return None
    return int(match.group(1) or match.group(2))


def retry_after_in(message: str | None) -> float | None:
    if not message:
        return None
    match = _RETRY_AFTER.search(message[:2000])
    return float(match.group(1)) if match else None


def classify_report(
    error_class: str | None, http_status: int | None, message: str | None
) -> ErrorClass:
    """The class of a worker's `error` report: its own `error_class` if it is one of ours, else
    its `http_status`, else an HTTP status or a connection error recognisable in its message."""
    if error_class:
        try:
            return ErrorClass(error_class)
        except ValueError:
            pass
    status = http_status if http_status is not None else http_status_in(message)
    if status in (418, 429):
        return ErrorClass.RATE_LIMITED
    if status is not None and 500 <= status <= 599:
        return ErrorClass.TRANSIENT
    if status is None and message and _CONNECTION.search(message[:2000]):
        return ErrorClass.TRANSIENT
    return ErrorClass.ERROR
