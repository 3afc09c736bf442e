"""How long a queue's steps ran (docs/api.md "Records and duration"), as `show` prints it: the
union of its steps' attempts, each from its launch (not before the queue's `started_at`) to its
end (or to now while it runs) — the
dashboard's "Ran for". Unlike started_at → finished_at, waits are left out: a retry's backoff,
or the time a queue sat in `error` before someone retried it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _intervals(step: dict[str, Any], now: datetime) -> Iterable[tuple[datetime, datetime]]:
    log = [a for a in step.get("attempts_log") or [] if isinstance(a, dict)]
    found = False
    for attempt in log:
        start = _when(attempt.get("started_at"))
        if start is None:
            continue
        found = True
        yield start, _when(attempt.get("ended_at")) or now
    if not found:
        start = _when(step.get("launched_at")) or _when(step.get("started_at"))
        if start is not None:
            yield start, _when(step.get("finished_at")) or now


def ran_seconds(queue: dict[str, Any], now: datetime | None = None) -> float | None:
    """Seconds at least one step of `queue` ran; None before its first worker started."""
    now = now or datetime.now(UTC)
    # from the queue's start (its first worker's), as its duration: the launch before it is not
    # its work yet, so a queue that ran straight through ran for its duration
    first = _when(queue.get("started_at"))
    if first is None:
        return None
    steps = [s for s in queue.get("steps") or [] if isinstance(s, dict)]
    clipped = ((max(a, first), b) for s in steps for a, b in _intervals(s, now))
    spans = sorted(span for span in clipped if span[1] >= span[0])
    if not spans:
        return None
    total = 0.0
    start, end = spans[0]
    for a, b in spans[1:]:
        if a > end:
            total += (end - start).total_seconds()
            start, end = a, b
        elif b > end:
            end = b
    return total + (end - start).total_seconds()


def span_text(seconds: float | None) -> str:
    """`2m 5s`, as the dashboard writes a span."""
    if seconds is None:
        return "—"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"
