"""Rate-limit groups (docs/operations.md "Rate-limit groups"): the steps that share one budget
of an exchange, and the breaker that holds them all once the exchange says "too many".

The exchange limits requests per IP, so every loader of the platform spends one budget. A step
of a group that fails `rate_limited` (HTTP 429 or 418) trips its group's breaker: until it
closes no step of the group launches, on any replica. The breaker is stored (the store's
`rate_limits` part) so every replica sees it; what it becomes on each trip is decided here.

Pure rules: nothing here reads a clock or a store.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from pydantic import BaseModel

from queue_manager.domain.history import EventKind
from queue_manager.domain.models import QueueState, Target
from queue_manager.domain.state import Outcome

#: the groups when RATE_LIMIT_GROUPS is not set: the loader's REST calls to the exchange (its
#: `api_*` and `rest_*` data types, and the single form's shorthands) share one budget
DEFAULT_GROUPS: Final[Mapping[str, tuple[str, ...]]] = {
    "exchange": (
        "loader-producer:api_*",
        "loader-producer:rest_*",
        "loader-producer:api",
        "loader-producer:rest",
    ),
}
GROUP_PATTERN: Final = r"^[a-z0-9][a-z0-9_.-]{0,62}$"

#: a rate-limited failure that names no wait (a 418 usually) holds the group this long the
#: first time, twice as long at each new opening within a day of the previous closing ...
FIRST_BAN: Final = timedelta(minutes=2)
#: ... and never longer than this
LONGEST_BAN: Final = timedelta(days=1)
#: an opening this long after the previous closing starts the escalation again
STRIKE_MEMORY: Final = timedelta(days=1)
#: the longest wait a worker's `retry_after` may ask for (the exchange bans for up to 3 days)
LONGEST_RETRY_AFTER: Final = timedelta(days=3)


@dataclass(frozen=True)
class RateLimitGroups:
    """Which group each (target, type) belongs to: the first group, in the order given, with a
    pattern `target:type-glob` that matches (fnmatch globs on the type), so at most one."""

    rules: tuple[tuple[str, Target, str], ...]

    @classmethod
    def parse(cls, groups: Mapping[str, Sequence[str]]) -> RateLimitGroups:
        """Raises ValueError saying what is wrong."""
        rules: list[tuple[str, Target, str]] = []
        seen: dict[tuple[Target, str], str] = {}
        for group, patterns in groups.items():
            if not isinstance(group, str) or not re.fullmatch(GROUP_PATTERN, group):
                raise ValueError(f"group name {group!r} must match {GROUP_PATTERN}")
            if isinstance(patterns, str) or not isinstance(patterns, Sequence) or not patterns:
                raise ValueError(f"group {group!r} must list target:type patterns")
            for pattern in patterns:
                target, glob = _pattern(group, pattern)
                if (target, glob) in seen:
                    raise ValueError(
                        f"pattern {pattern!r} is in groups {seen[(target, glob)]!r} and {group!r}"
                    )
                seen[(target, glob)] = group
                rules.append((group, target, glob))
        return cls(tuple(rules))

    @classmethod
    def default(cls) -> RateLimitGroups:
        return cls.parse(DEFAULT_GROUPS)

    @property
    def names(self) -> list[str]:
        return list(dict.fromkeys(group for group, _, _ in self.rules))

    def patterns(self, group: str) -> list[str]:
        return [f"{t.value}:{glob}" for g, t, glob in self.rules if g == group]

    def group_of(self, target: str, type_: str) -> str | None:
        for group, rule_target, glob in self.rules:
            if rule_target.value == target and fnmatch.fnmatchcase(type_, glob):
                return group
        return None


def _pattern(group: str, pattern: object) -> tuple[Target, str]:
    text = pattern if isinstance(pattern, str) else ""
    target, sep, glob = text.partition(":")
    if not sep or not glob or target not in Target._value2member_map_:
        raise ValueError(
            f"group {group!r}: {pattern!r} is not target:type-glob "
            f"(targets: {', '.join(t.value for t in Target)}), e.g. loader-producer:api_*"
        )
    return Target(target), glob


class Breaker(BaseModel):
    """A group's breaker as stored. Open while `now < open_until`; a closed one is kept, for
    its `strikes` (the escalation of waits nobody named)."""

    group: str
    open_until: datetime
    reason: str
    opened_at: datetime
    #: how many times in a row it opened within a day of its previous closing (1: the first)
    strikes: int = 1
    #: the queue and step whose failure opened it
    queue_id: str | None = None
    step: int | None = None

    def is_open(self, now: datetime) -> bool:
        return now < self.open_until


def default_wait(strikes: int) -> timedelta:
    """How long a rate-limited failure that names no wait holds its group: 2 min, 4, 8, ...
    doubling with each opening within a day of the previous closing, at most 1 day."""
    doublings = min(max(strikes - 1, 0), 20)
    return min(FIRST_BAN * (1 << doublings), LONGEST_BAN)


def trip(
    current: Breaker | None,
    group: str,
    now: datetime,
    retry_after: float | None,
    reason: str,
    *,
    queue_id: str | None = None,
    step: int | None = None,
) -> Breaker | None:
    """The group's breaker after a rate-limited failure; None when `current` stands as it is.

    Open already: extended to `now + retry_after` when that is later (a failure naming no wait
    never extends it: the failures of steps launched before it opened say nothing new). Closed
    (or never opened): it opens until `now + retry_after`, or for `default_wait` of its strikes.
    """
    wait = _asked(retry_after)
    if current is not None and current.is_open(now):
        if wait is None or now + wait <= current.open_until:
            return None
        return current.model_copy(update={"open_until": now + wait})
    recent = current is not None and now - current.open_until < STRIKE_MEMORY
    strikes = current.strikes + 1 if current is not None and recent else 1
    return Breaker(
        group=group,
        open_until=now + (wait if wait is not None else default_wait(strikes)),
        reason=reason,
        opened_at=now,
        strikes=strikes,
        queue_id=queue_id,
        step=step,
    )


def _asked(retry_after: float | None) -> timedelta | None:
    if retry_after is None or retry_after != retry_after:  # None or NaN
        return None
    return min(timedelta(seconds=max(retry_after, 0.0)), LONGEST_RETRY_AFTER)


def opened(before: Breaker | None, after: Breaker | None, now: datetime) -> bool:
    """Did the write that replaced `before` with `after` open the breaker (rather than extend
    one already open, or change nothing)?"""
    if after is None or not after.is_open(now):
        return False
    return before is None or not before.is_open(now)


def waiting_reason(breaker: Breaker) -> str:
    """What a step of the group held by `breaker` shows in `waiting`."""
    until = breaker.open_until.isoformat(timespec="seconds")
    return f"rate limit of group {breaker.group} open until {until}: {breaker.reason}"


#: how every rate-limit `waiting` begins, so the steps it holds can be found
WAITING_PREFIX: Final = "rate limit of group "


def release_at(until: datetime, position: int, per_second: float) -> datetime:
    """When the `position`-th (0 first) step held by a breaker that closed at `until` may
    launch: spread at `per_second`, the same on every replica."""
    return until + timedelta(seconds=position / per_second)


def opened_event(queue: QueueState, breaker: Breaker, now: datetime) -> Outcome:
    """The history event on the queue whose failure opened the breaker (written once: by the
    replica whose write opened it)."""
    out = Outcome()
    step = breaker.step if breaker.step is not None and breaker.step < len(queue.steps) else None
    until = breaker.open_until.isoformat(timespec="seconds")
    out.record(
        EventKind.RATE_LIMIT,
        now,
        step=step,
        to="open",
        message=f"rate limit of group {breaker.group} opened until {until}: {breaker.reason}",
    )
    return out
