"""Schedules (docs/schedules.md): create, change, pause, resume, delete — and the scheduler loop
that starts each tick's runs exactly once across replicas and restarts.

Exactly once comes from the store: every tick's decision (started, skipped, missed) is claimed
under the unique key (schedule, scheduled time) in the same transaction that inserts its queues.
Replicas that race for a tick all compute it; one claim wins, the others change nothing. A
replica that was down finds the ticks after the last decided one and applies the catch-up
policy to them.
"""

from __future__ import annotations

import asyncio
import contextlib
from asyncio import FIRST_COMPLETED
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from queue_manager.domain import cron, state
from queue_manager.domain.errors import (
    Conflict,
    DependencyUnavailable,
    InvalidRequest,
    ScheduleNotFound,
)
from queue_manager.domain.history import EventKind
from queue_manager.domain.models import QueueState
from queue_manager.domain.schedules import (
    MAX_TICKS_PER_PASS,
    ConcurrencyPolicy,
    RunOutcome,
    Schedule,
    ScheduleCreate,
    ScheduleRun,
    ScheduleUpdate,
    check_template,
    plan_ticks,
    run_requests,
)
from queue_manager.ports import Bus, Clock, ScheduleStore
from queue_manager.services.engine import Engine
from queue_manager.services.queues import QueueService

log = structlog.get_logger(__name__)

#: the history's actor for what the scheduler does
SCHEDULER = "scheduler"


class ScheduleService:
    def __init__(
        self,
        queues: QueueService,
        engine: Engine,
        *,
        store: ScheduleStore,
        bus: Bus,
        clock: Clock,
        count_run: Callable[[str], None],
        poll_seconds: float = 10.0,
    ) -> None:
        #: how often the loop re-reads the schedules when no tick is due sooner: changes made
        #: on another replica are seen within this (in real seconds, whatever the clock)
        self.poll_seconds = poll_seconds
        self.queues = queues
        self.engine = engine
        self.store = store
        self.bus = bus
        self.clock = clock
        self._count_run = count_run
        self._wake = asyncio.Event()

    # -- use cases --------------------------------------------------------------------------

    async def create(self, body: ScheduleCreate, actor: str | None) -> Schedule:
        at = self.clock.now()
        schedule = body.build(actor, at)
        self._check_images(schedule, at)
        if not await self.store.put_schedule(schedule):
            raise Conflict(
                f"Schedule {schedule.name} exists; change it with PATCH or delete it first",
                data={"name": schedule.name},
            )
        log.info("schedule created", schedule=schedule.name, cron=schedule.cron, actor=actor)
        self._wake.set()
        return schedule

    def _check_images(self, schedule: Schedule, at: datetime) -> None:
        """Its runs' `image`s must be allowed (ALLOWED_IMAGES), as for any start."""
        for request in check_template(schedule, at):
            self.queues.check_images(request, prefix="template")

    async def get(self, name: str) -> Schedule:
        schedule = await self.store.get_schedule(name)
        if schedule is None:
            raise ScheduleNotFound(name)
        return schedule

    async def all(self) -> list[Schedule]:
        return await self.store.list_schedules()

    async def update(self, name: str, patch: ScheduleUpdate, actor: str | None) -> Schedule:
        at = self.clock.now()

        def change(schedule: Schedule) -> None:
            patch.apply(schedule, at)
            self._check_images(schedule, at)

        schedule = await self.store.update_schedule(name, change)
        if schedule is None:
            raise ScheduleNotFound(name)
        log.info("schedule changed", schedule=name, fields=sorted(patch.model_fields_set))
        self._wake.set()
        return schedule

    async def set_paused(self, name: str, paused: bool, actor: str | None) -> Schedule:
        at = self.clock.now()

        def change(schedule: Schedule) -> None:
            if schedule.paused and not paused:
                schedule.since = at  # the ticks of the pause are not caught up
            schedule.paused = paused
            schedule.updated_at = at

        schedule = await self.store.update_schedule(name, change)
        if schedule is None:
            raise ScheduleNotFound(name)
        log.info("schedule paused" if paused else "schedule resumed", schedule=name, actor=actor)
        self._wake.set()
        return schedule

    async def delete(self, name: str, actor: str | None) -> None:
        if not await self.store.delete_schedule(name):
            raise ScheduleNotFound(name)
        log.info("schedule deleted", schedule=name, actor=actor)

    async def runs(self, name: str, *, before: datetime | None, limit: int) -> list[ScheduleRun]:
        await self.get(name)
        return await self.store.schedule_runs(name, before=before, limit=limit)

    def next_tick(self, schedule: Schedule) -> datetime | None:
        if schedule.paused:
            return None
        return cron.next_tick(schedule.cron, schedule.zone, self.clock.now())

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Supervised: decide the due ticks, then wait for the next one (or a change)."""
        while True:
            self._wake.clear()
            try:
                upcoming = await self.evaluate()
            except DependencyUnavailable as exc:
                log.warning(
                    "scheduler pass postponed", dependency=exc.dependency, reason=exc.detail
                )
                upcoming = None
            await self._pause(upcoming)

    async def _pause(self, upcoming: datetime | None) -> None:
        """Until the clock reaches the next tick, a schedule changes here, or a poll passes."""
        waits: list[asyncio.Future[object]] = [asyncio.ensure_future(self._wake.wait())]
        if upcoming is not None:
            waits.append(asyncio.ensure_future(self.clock.sleep_until(upcoming)))
        try:
            # asyncio.wait, not wait_for: on Python 3.11 wait_for swallows a cancellation that
            # lands as the wake-up does (a schedule changed just before shutdown), and the loop
            # would go on for another poll; asyncio.wait never does.
            await asyncio.wait(waits, timeout=self.poll_seconds, return_when=FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def evaluate(self) -> datetime | None:
        """One pass over every schedule; returns when the next tick is due."""
        schedules = await self.store.list_schedules()
        decided = await self.store.last_ticks()
        upcoming: datetime | None = None
        for schedule in schedules:
            if schedule.paused:
                continue
            at = self.clock.now()
            since = max(schedule.since, decided.get(schedule.name, schedule.since))
            due = cron.ticks(schedule.cron, schedule.zone, since, at, limit=MAX_TICKS_PER_PASS)
            plan = plan_ticks(schedule, due, at)
            run = set(plan.run)
            for tick in due:
                if tick in run:
                    await self._fire(schedule, tick)
                else:
                    why = f"{_late(at, tick)} (catchup {schedule.catchup.value}"
                    if schedule.starting_deadline_seconds is not None:
                        why += f", starting deadline {schedule.starting_deadline_seconds} s"
                    await self._decide(schedule, tick, RunOutcome.MISSED, why + ")")
            following = cron.next_tick(schedule.cron, schedule.zone, at)
            upcoming = following if upcoming is None else min(upcoming, following)
        return upcoming

    async def _decide(
        self, schedule: Schedule, tick: datetime, outcome: RunOutcome, reason: str
    ) -> bool:
        run = ScheduleRun(
            schedule=schedule.name,
            scheduled_for=tick,
            outcome=outcome,
            reason=reason,
            decided_at=self.clock.now(),
        )
        if not await self.store.claim_tick(run, []):
            return False
        self._count_run(outcome.value)
        log.info(f"schedule tick {outcome.value}", schedule=schedule.name, tick=tick, reason=reason)
        return True

    async def _fire(self, schedule: Schedule, tick: datetime) -> None:
        active = await self.store.active_runs(schedule.name)
        if active and schedule.concurrency_policy is ConcurrencyPolicy.FORBID:
            blocking = active[0]
            reason = (
                f"previous run {blocking.id} is still {blocking.status.value} "
                "(concurrency_policy Forbid)"
            )
            if await self._decide(schedule, tick, RunOutcome.SKIPPED, reason):
                await self._note(
                    blocking,
                    f"tick {tick.isoformat()} skipped: this run is "
                    f"still {blocking.status.value} (Forbid)",
                )
            return
        actor = f"schedule:{schedule.name}"
        why = f"run of schedule {schedule.name} for {tick.isoformat()}"
        try:
            # Prepared too: settings may have changed since the template was checked
            # (ALLOWED_IMAGES).
            prepared = [
                self.queues.prepare(
                    request,
                    actor,
                    why=why,
                    event_actor=SCHEDULER,
                    schedule=schedule.name,
                    scheduled_for=tick,
                )
                for request in run_requests(schedule, tick, schedule.symbols)
            ]
        except InvalidRequest as exc:
            problem = "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors)
            await self._decide(schedule, tick, RunOutcome.SKIPPED, f"invalid template: {problem}")
            return
        await self.bus.ping()
        run = ScheduleRun(
            schedule=schedule.name,
            scheduled_for=tick,
            outcome=RunOutcome.STARTED,
            queue_ids=[queue.id for queue, _ in prepared],
            reason=_late(self.clock.now(), tick),
            decided_at=self.clock.now(),
        )
        if not await self.store.claim_tick(run, [(q, [e]) for q, e in prepared]):
            return  # another replica decided this tick
        self._count_run(RunOutcome.STARTED.value)
        log.info(
            "schedule tick started",
            schedule=schedule.name,
            tick=tick,
            queues=len(prepared),
        )
        if schedule.concurrency_policy is ConcurrencyPolicy.REPLACE:
            for old in active:
                await self._note(old, f"replaced by the run for {tick.isoformat()} (Replace)")
                with contextlib.suppress(Conflict):  # it ended meanwhile
                    await self.queues.stop(old.id, actor=actor)
        for queue, _ in prepared:
            await self.queues.launched(queue, actor)

    async def _note(self, queue: QueueState, message: str) -> None:
        def note(q: QueueState) -> state.Outcome:
            out = state.Outcome()
            out.record(EventKind.SCHEDULE, self.clock.now(), message=message)
            return out

        await self.engine.apply(queue.id, note, actor=SCHEDULER)


def _late(at: datetime, tick: datetime) -> str:
    late = at - tick
    if late <= timedelta(seconds=1):
        return "on time"
    return f"{late.total_seconds():.0f} s late"
