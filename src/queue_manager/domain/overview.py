"""The overview (docs/api.md "GET /stats/overview"): runs over time by status, failure rates by
target and by symbol, what runs and waits now.

The stores count (`StatsStore.run_stats`: a few grouped queries over the window's queues,
never every queue); this module turns their counts into the answer: buckets, rates, the order.

What counts:
- a *run* is a queue created in the window, a backfill's parent excluded (its children are the
  runs); its bucket is the hour it was created in, its status the one it has now;
- a *failure rate* is `failed / (finished + failed)`: of what ran to an outcome, the share that
  failed. Stopped queues and steps are someone's decision, not a failure: counted in neither.
  By target it counts steps (of the window's ended queues), by symbol queues.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from pydantic import BaseModel, Field

from queue_manager.domain.models import ACTIVE_QUEUE_STATUSES, QueueStatus


class Window(StrEnum):
    DAY = "24h"
    WEEK = "7d"

    @property
    def length(self) -> timedelta:
        return _LENGTH[self]

    @property
    def bucket(self) -> timedelta:
        """The width of one bar: 24 bars of an hour, or 28 of six hours."""
        return _BUCKET[self]


_LENGTH: Final = {Window.DAY: timedelta(hours=24), Window.WEEK: timedelta(days=7)}
_BUCKET: Final = {Window.DAY: timedelta(hours=1), Window.WEEK: timedelta(hours=6)}
#: the symbols shown: the most failing first
MAX_SYMBOLS: Final = 20
#: the layout of the hour a store counts runs in (its `created` text cut to the hour)
HOUR_FORMAT: Final = "%Y-%m-%dT%H"


@dataclass(frozen=True)
class Tally:
    """Of one target or symbol: how many ran to an outcome, and how many of those failed."""

    key: str
    ended: int
    failed: int


@dataclass
class RunStats:
    """What a store counts for `since` (see the module's docstring)."""

    #: (hour as HOUR_FORMAT text, queue status, how many)
    runs_by_hour: list[tuple[str, str, int]] = field(default_factory=list)
    by_target: list[Tally] = field(default_factory=list)
    by_symbol: list[Tally] = field(default_factory=list)


class Bucket(BaseModel):
    start: datetime
    #: runs created in the bucket, by their status now (statuses with none left out)
    counts: dict[str, int]


class Rate(BaseModel):
    key: str = Field(description="the target or the symbol")
    ended: int = Field(description="finished + failed (stopped ones are not counted)")
    failed: int
    failure_rate: float = Field(description="failed / ended, 0 when nothing ended")


class Overview(BaseModel):
    window: Window
    since: datetime
    until: datetime
    bucket_seconds: int
    buckets: list[Bucket]
    #: runs in the window by status
    totals: dict[str, int]
    by_target: list[Rate]
    by_symbol: list[Rate]
    #: every queue not ended now (whatever its age), by status: queued ones wait for admission
    now: dict[str, int]


def since(window: Window, now: datetime) -> datetime:
    """The window's first bucket start: `now` minus the window, down to a whole bucket, so the
    same hour always falls in the same bar."""
    start = now.astimezone(UTC) - window.length + window.bucket
    step = int(window.bucket.total_seconds())
    epoch = int(start.timestamp())
    return datetime.fromtimestamp(epoch - epoch % step, UTC)


def overview(
    window: Window, now: datetime, stats: RunStats, counts_now: dict[str, int]
) -> Overview:
    first = since(window, now)
    width = window.bucket
    n = int(window.length / width)
    buckets = [Bucket(start=first + i * width, counts={}) for i in range(n)]
    totals: dict[str, int] = {}
    for hour, status, count in stats.runs_by_hour:
        at = datetime.strptime(hour, HOUR_FORMAT).replace(tzinfo=UTC)
        i = int((at - first) / width)
        if not 0 <= i < n or count <= 0:
            continue
        counts = buckets[i].counts
        counts[status] = counts.get(status, 0) + count
        totals[status] = totals.get(status, 0) + count
    active = {s.value for s in ACTIVE_QUEUE_STATUSES}
    return Overview(
        window=window,
        since=first,
        until=now.astimezone(UTC),
        bucket_seconds=int(width.total_seconds()),
        buckets=buckets,
        totals=totals,
        by_target=_rates(stats.by_target, None),
        by_symbol=_rates(stats.by_symbol, MAX_SYMBOLS),
        now={s: counts_now.get(s, 0) for s in sorted(active, key=_order)},
    )


def _order(status: str) -> int:
    return list(QueueStatus).index(QueueStatus(status))


def _rates(tallies: list[Tally], keep: int | None) -> list[Rate]:
    rates = [
        Rate(
            key=t.key,
            ended=t.ended,
            failed=t.failed,
            failure_rate=round(t.failed / t.ended, 4) if t.ended else 0.0,
        )
        for t in tallies
        if t.ended > 0
    ]
    # The worst first; among equals the busiest, then by name so the order is stable.
    rates.sort(key=lambda r: (-r.failure_rate, -r.ended, r.key))
    return rates if keep is None else rates[:keep]
