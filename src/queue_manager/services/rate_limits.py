"""Rate-limit groups (docs/operations.md "Rate-limit groups"): trip a group's breaker when one of
its steps is rate limited, and say which steps it holds.

The breakers live in the store, so a breaker one replica opens holds the group on all of them.
The launch path asks `gate` once per claim; it reads the breakers at most once per
RATE_LIMIT_CACHE_SECONDS (monotonic time) whatever the number of steps and queues, so another
replica sees a breaker opened elsewhere that much later at most. A trip updates this replica's
copy at once. Steps of no group never cause a read.

Releasing the steps a closed breaker held, spread over time, is services/rate_limit_release.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import structlog
from pydantic import BaseModel, ConfigDict

from queue_manager.domain import history
from queue_manager.domain import rate_limits as rules
from queue_manager.domain.models import QueueState, Step
from queue_manager.domain.rate_limits import Breaker, RateLimitGroups
from queue_manager.ports import Clock, RateLimitStore, ServiceMetrics, StateStore

log = structlog.get_logger(__name__)

#: the actor of the history event a trip writes
RATE_LIMITER = "rate-limiter"


class BreakerStore(StateStore, RateLimitStore, Protocol):
    """What the rate limits use of the store: the breakers, and the queues for the history."""


class GroupState(BaseModel):
    """A group as GET /rate-limits shows it. `until`, `reason` and `queue_id` (the queue whose
    failure opened it) are null while it is closed; `opened_at` and `strikes` (openings within a
    day of each other: what escalates a wait nobody named) are the last opening's."""

    model_config = ConfigDict(frozen=True)

    group: str
    open: bool
    until: datetime | None
    reason: str | None
    patterns: list[str]
    opened_at: datetime | None = None
    strikes: int = 0
    queue_id: str | None = None


class RateLimits:
    def __init__(
        self,
        *,
        store: BreakerStore,
        groups: RateLimitGroups,
        clock: Clock,
        metrics: ServiceMetrics,
        cache_seconds: float = 0.5,
        release_per_second: float = 2.0,
    ) -> None:
        self.store = store
        self.groups = groups
        self.clock = clock
        self.metrics = metrics
        self.cache_seconds = cache_seconds
        self.release_per_second = release_per_second
        self._known: dict[str, Breaker] = {}
        #: monotonic time of the last read; None: never read
        self._read_at: float | None = None
        #: per group, the `open_until` of the last closing whose release was planned
        self._released: dict[str, datetime] = {}
        #: per group being released, when each queue it held may launch again
        self._plans: dict[str, dict[str, datetime]] = {}

    def group_of(self, target: str, type: str) -> str | None:
        return self.groups.group_of(target, type)

    async def trip(
        self,
        target: str,
        type: str,
        retry_after: float | None,
        reason: str,
        *,
        queue_id: str | None = None,
        step: int | None = None,
    ) -> None:
        """A step of (target, type) failed rate limited: open its group's breaker, or extend
        it. The write that opens it (one, however many replicas trip at once) adds a history
        event to the queue `queue_id`, when given."""
        group = self.group_of(target, type)
        if group is None:
            return
        now = self.clock.now()

        def change(current: Breaker | None) -> Breaker | None:
            return rules.trip(
                current, group, now, retry_after, reason, queue_id=queue_id, step=step
            )

        before, after = await self.store.trip_breaker(group, change)
        if after is not None:
            self._known[group] = after
        if not rules.opened(before, after, now):
            if after is not None and before is not None and after.open_until > before.open_until:
                log.info("rate limit extended", group=group, until=after.open_until.isoformat())
            return
        assert after is not None
        self.metrics.rate_limit_open(group, True)
        log.warning(
            "rate limit opened",
            group=group,
            until=after.open_until.isoformat(),
            strikes=after.strikes,
            reason=reason,
            queue_id=queue_id,
        )
        if queue_id is not None:
            await self._record(queue_id, after, now)

    async def _record(self, queue_id: str, breaker: Breaker, now: datetime) -> None:
        def mutate(queue: QueueState) -> list[history.QueueEvent] | None:
            events = rules.opened_event(queue, breaker, now).events
            history.stamp(events, RATE_LIMITER)
            history.number(queue, events)
            return events

        await self.store.update_many({queue_id: mutate})

    async def held(self, target: str, type: str) -> tuple[datetime, str] | None:
        """(until when, why) a step of (target, type) may not launch now; None: it may."""
        group = self.group_of(target, type)
        if group is None:
            return None
        breaker = (await self._breakers()).get(group)
        if breaker is None or not breaker.is_open(self.clock.now()):
            return None
        return breaker.open_until, rules.waiting_reason(breaker)

    async def gate(self, queue_id: str) -> Callable[[Step], str | None] | None:
        """For one claim of the queue: what holds a step (its `waiting`), or None when nothing
        is held. An open group holds all its steps; a closed one still holds those it held
        (their `waiting` names it) until their turn in the release
        (services/rate_limit_release.py), whoever asks to launch them — the reconciler too."""
        if not self.groups.rules:
            return None
        now = self.clock.now()
        known = await self._breakers()
        shut = {g: b for g, b in known.items() if b.is_open(now)}
        releasing = {g for g, b in known.items() if g not in shut and self._releasing(b, now)}
        if not shut and not releasing:
            return None

        def hold(step: Step) -> str | None:
            group = self.groups.group_of(step.target.value, step.type)
            if group is None:
                return None
            breaker = shut.get(group)
            if breaker is not None:
                return rules.waiting_reason(breaker)
            held_here = (step.waiting or "").startswith(f"{rules.WAITING_PREFIX}{group} ")
            if group not in releasing or not held_here:
                return None
            plan = self._plans.get(group)
            if plan is None:  # its release is not planned yet
                return step.waiting
            turn = plan.get(queue_id)
            return step.waiting if turn is not None and now < turn else None

        return hold

    def _releasing(self, breaker: Breaker, now: datetime) -> bool:
        """Closed, and its release not planned yet or not over."""
        if self._released.get(breaker.group) != breaker.open_until:
            return True
        plan = self._plans.get(breaker.group)
        return plan is not None and any(now < turn for turn in plan.values())

    def unreleased(self, breakers: list[Breaker]) -> list[Breaker]:
        """The closed breakers whose release this replica has not planned yet."""
        now = self.clock.now()
        return [
            b
            for b in breakers
            if not b.is_open(now) and self._released.get(b.group) != b.open_until
        ]

    def plan_release(self, breaker: Breaker, queue_ids: list[str]) -> dict[str, datetime]:
        """When each queue `breaker` held launches again: oldest first, spread at
        RATE_LIMIT_RELEASE_PER_SECOND from its closing (the same times on every replica)."""
        plan = {
            queue_id: rules.release_at(breaker.open_until, position, self.release_per_second)
            for position, queue_id in enumerate(queue_ids)
        }
        self._plans[breaker.group] = plan
        self._released[breaker.group] = breaker.open_until
        return plan

    async def refresh(self) -> list[Breaker]:
        """Read the breakers now (not from this replica's copy), and set the metric."""
        found = await self.store.breakers()
        self._known = {b.group: b for b in found}
        self._read_at = time.monotonic()
        now = self.clock.now()
        for group in self.groups.names:
            breaker = self._known.get(group)
            self.metrics.rate_limit_open(group, breaker is not None and breaker.is_open(now))
        return found

    async def states(self) -> list[GroupState]:
        """Every configured group (and any other the store still holds), as it is now."""
        await self.refresh()
        now = self.clock.now()
        names = list(dict.fromkeys([*self.groups.names, *sorted(self._known)]))
        shown = []
        for group in names:
            breaker = self._known.get(group)
            is_open = breaker is not None and breaker.is_open(now)
            shown.append(
                GroupState(
                    group=group,
                    open=is_open,
                    until=breaker.open_until if breaker is not None and is_open else None,
                    reason=breaker.reason if breaker is not None and is_open else None,
                    patterns=self.groups.patterns(group),
                    opened_at=breaker.opened_at if breaker is not None else None,
                    strikes=breaker.strikes if breaker is not None else 0,
                    queue_id=breaker.queue_id if breaker is not None and is_open else None,
                )
            )
        return shown

    async def _breakers(self) -> dict[str, Breaker]:
        stale = self._read_at is None or time.monotonic() - self._read_at >= self.cache_seconds
        if stale:
            await self.refresh()
        return self._known
