"""Schedules (docs/schedules.md): a pipeline template started for some symbols at every tick of a
cron, each run an ordinary queue. What a client may send, what is stored, and the pure rules:
which ticks run, which are missed, and the start requests a tick makes."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    field_validator,
)

from queue_manager.domain import cron
from queue_manager.domain.errors import InvalidRequest
from queue_manager.domain.models import utcnow
from queue_manager.domain.requests import (
    PipelineCreate,
    QueueCreate,
    StartRequest,
    Symbols,
    field_errors,
)

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
_NAME_RE = re.compile(NAME_PATTERN)
#: NAME_PATTERN in words: what a refused name is told
NAME_RULE = (
    "must be 1 to 63 lowercase letters, digits or '-', starting and ending with a letter or "
    "digit, e.g. nightly-candles"
)
WINDOW_RE = re.compile(r"^([1-9][0-9]{0,2})(d|w|M)$")
#: `{date}` is the tick's date in the schedule's timezone; `{date-1d}`, `{date+2d}` shift it
DATE_TOKEN_RE = re.compile(r"\{date(?:([+-])([0-9]{1,4})d)?\}")
#: how many past ticks one pass looks at: a long outage of a per-minute schedule is bounded
MAX_TICKS_PER_PASS = 1000
#: a tick handled this late (by the scheduler's clock) still counts as on time
ON_TIME = timedelta(seconds=60)


def _name_rule(value: str) -> str:
    if not _NAME_RE.match(value):
        raise ValueError(NAME_RULE)
    return value


#: a schedule's name (a DNS label: it names the runs' jobs), refused in words, not as a regex
ScheduleName = Annotated[
    str,
    AfterValidator(_name_rule),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": NAME_PATTERN,
            "maxLength": 63,
            "description": "1 to 63 lowercase letters, digits or '-', starting and ending with "
            "a letter or digit.",
            "examples": ["nightly-candles"],
        }
    ),
]


class ConcurrencyPolicy(StrEnum):
    """Kubernetes CronJob semantics, for the runs of one schedule."""

    ALLOW = "Allow"
    FORBID = "Forbid"
    REPLACE = "Replace"


class Catchup(StrEnum):
    NONE = "none"
    LATEST = "latest"
    ALL = "all"


class Schedule(BaseModel):
    """As stored and returned."""

    name: str
    cron: str
    timezone: str = "UTC"
    template: dict[str, Any]
    symbols: list[str]
    concurrency_policy: ConcurrencyPolicy = ConcurrencyPolicy.ALLOW
    catchup: Catchup = Catchup.LATEST
    starting_deadline_seconds: int | None = None
    paused: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    created_by: str | None = None
    #: ticks at or before this are never run: set at creation, resume and a cron change
    since: datetime = Field(default_factory=utcnow)

    @property
    def zone(self) -> ZoneInfo:
        return cron.check_timezone(self.timezone)


class RunOutcome(StrEnum):
    STARTED = "started"
    SKIPPED = "skipped"
    MISSED = "missed"


class ScheduleRun(BaseModel):
    """What became of one tick; stored once per (schedule, scheduled_for), whoever decided."""

    schedule: str
    scheduled_for: datetime
    outcome: RunOutcome
    queue_ids: list[str] = Field(default_factory=list)
    reason: str | None = None
    decided_at: datetime = Field(default_factory=utcnow)


# -- what a client sends ----------------------------------------------------------------------


class _Fields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    cron: str | None = Field(
        default=None,
        description="5 fields: minute hour day-of-month month day-of-week (read in `timezone`).",
        examples=["15 0 * * *"],
    )
    timezone: str | None = Field(default=None, examples=["UTC", "Europe/London"])
    template: dict[str, Any] | None = Field(
        default=None,
        description="A start request without `symbol`; its `time_range` is either `window` "
        "(`1d` = the day before the tick, `7d`, `1w`, `1M` = the previous calendar month) or a "
        "`time_range` with `{date}` / `{date-1d}` tokens.",
        examples=[{"type": "api_candles_5m", "window": "1d"}],
    )
    symbols: Symbols | None = Field(default=None, max_length=200)
    concurrency_policy: ConcurrencyPolicy | None = None
    catchup: Catchup | None = None
    starting_deadline_seconds: int | None = Field(default=None, ge=1, le=366 * 86400)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else cron.check_cron(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None:
            cron.check_timezone(value)
        return value


class ScheduleCreate(_Fields):
    name: ScheduleName
    paused: bool = False

    def build(self, actor: str | None, now: datetime) -> Schedule:
        missing = [
            {"field": name, "message": f"{name} is required{why}"}
            for name, why in (
                ("cron", ": a window is relative to the cron's tick"),
                ("template", ""),
                ("symbols", ""),
            )
            if getattr(self, name) is None
        ]
        if missing:
            raise InvalidRequest(missing)
        assert self.cron is not None and self.template is not None and self.symbols is not None
        schedule = Schedule(
            name=self.name,
            cron=self.cron,
            timezone=self.timezone or "UTC",
            template=self.template,
            symbols=self.symbols,
            concurrency_policy=self.concurrency_policy or ConcurrencyPolicy.ALLOW,
            catchup=self.catchup or Catchup.LATEST,
            starting_deadline_seconds=self.starting_deadline_seconds,
            paused=self.paused,
            created_at=now,
            updated_at=now,
            created_by=actor,
            since=now,
        )
        check_template(schedule, now)
        return schedule


class ScheduleUpdate(_Fields):
    """PATCH: the fields given replace the stored ones."""

    def apply(self, schedule: Schedule, now: datetime) -> None:
        given = self.model_dump(exclude_unset=True)
        for name, value in given.items():
            if value is None and name != "starting_deadline_seconds":
                raise InvalidRequest([{"field": name, "message": f"{name} cannot be removed"}])
            setattr(schedule, name, value)
        if given.keys() & {"cron", "timezone"}:
            schedule.since = now  # a new rhythm starts now; no catch-up of the old one
        schedule.updated_at = now
        check_template(schedule, now)


# -- the runs of a tick -----------------------------------------------------------------------


def check_template(schedule: Schedule, now: datetime) -> list[QueueCreate | PipelineCreate]:
    """Render the template for the next tick, so a schedule that could never start a valid queue
    is refused at once, naming the field; returns the request rendered."""
    tick = cron.next_tick(schedule.cron, schedule.zone, now)
    return run_requests(schedule, tick, schedule.symbols[:1])


def run_requests(
    schedule: Schedule, tick: datetime, symbols: Sequence[str]
) -> list[QueueCreate | PipelineCreate]:
    body = dict(schedule.template)
    errors = []
    if "symbol" in body:
        errors.append({"field": "template.symbol", "message": "give the schedule's symbols"})
    window, time_range = body.pop("window", None), body.pop("time_range", None)
    day = tick.astimezone(schedule.zone).date()
    if (window is None) == (time_range is None):
        errors.append(
            {"field": "template.window", "message": "give exactly one of window or time_range"}
        )
    elif window is not None:
        try:
            body["time_range"] = window_range(window, day)
        except ValueError as exc:
            errors.append({"field": "template.window", "message": str(exc)})
    elif not isinstance(time_range, str):
        errors.append({"field": "template.time_range", "message": "must be a string"})
    else:
        body["time_range"] = render_dates(time_range, day)
    if errors:
        raise InvalidRequest(errors)
    adapter: TypeAdapter[QueueCreate | PipelineCreate] = TypeAdapter(StartRequest)
    requests = []
    for symbol in symbols:
        try:
            requests.append(adapter.validate_python({**body, "symbol": symbol}))
        except ValidationError as exc:
            errors = field_errors(exc.errors(include_url=False), "template", StartRequest)
            raise InvalidRequest(errors) from None
    return requests


def window_range(window: str, day: date) -> str:
    """`Nd`: the N days before `day`; `Nw`: the 7N days before; `NM`: the N calendar months
    before `day`'s month."""
    match = WINDOW_RE.match(window) if isinstance(window, str) else None
    if not match:
        raise ValueError("must be a number then d, w or M, e.g. 1d, 7d, 1w, 1M")
    n, unit = int(match.group(1)), match.group(2)
    if unit == "M":
        first = day.replace(day=1)
        year, month = divmod(first.year * 12 + first.month - 1 - n, 12)
        start = date(year, month + 1, 1)
        end = first - timedelta(days=1)
    else:
        days = n * (7 if unit == "w" else 1)
        start, end = day - timedelta(days=days), day - timedelta(days=1)
    return f"{start.isoformat()}:{end.isoformat()}"


def render_dates(template: str, day: date) -> str:
    def one(match: re.Match[str]) -> str:
        sign, days = match.group(1), match.group(2)
        shift = timedelta(days=int(days)) if days else timedelta()
        return (day - shift if sign == "-" else day + shift).isoformat()

    return DATE_TOKEN_RE.sub(one, template)


@dataclass(frozen=True)
class TickPlan:
    run: list[datetime]
    missed: list[datetime]


def plan_ticks(schedule: Schedule, due: Sequence[datetime], now: datetime) -> TickPlan:
    """Of the ticks due and not yet decided (oldest first), which run and which are missed.

    A tick later than `starting_deadline_seconds` is missed whatever the catch-up. Of the rest:
    `none` runs only ticks handled on time (within a minute), `latest` the most recent one,
    `all` every one, oldest first.
    """
    deadline = schedule.starting_deadline_seconds
    live = [t for t in due if deadline is None or now - t <= timedelta(seconds=deadline)]
    if schedule.catchup is Catchup.ALL:
        run = live
    elif schedule.catchup is Catchup.LATEST:
        run = live[-1:]
    else:
        run = [t for t in live if now - t <= ON_TIME]
    chosen = set(run)
    return TickPlan(run=run, missed=[t for t in due if t not in chosen])
