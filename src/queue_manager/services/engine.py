"""The one path by which queue state changes: write, broadcast, then act on the outcome.

Every use case (start, stop, telemetry, job events, reconcile) calls `apply` with a domain
function. The store runs that function on the freshest copy inside its atomic update; afterwards
the engine broadcasts what changed, deletes the jobs the outcome says must go, and launches the
steps that became ready. Acting only after the write means a crash can repeat an action, never
lose one; launches and deletes are idempotent for that reason.

Besides that path the engine holds what follows a write: admission (a freed slot admits the next
queued queue) and launching and deleting jobs. What reacts to the launcher's word on a job is
services/job_events.py; enforcing stop deadlines is services/stop_deadlines.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field

import structlog

from queue_manager.domain import backfill, history, naming, state
from queue_manager.domain.errors import DependencyUnavailable, LaunchFailed
from queue_manager.domain.history import EventKind, QueueEvent
from queue_manager.domain.models import QueueState, QueueStatus, StepStatus, Target
from queue_manager.domain.retry import ErrorClass
from queue_manager.domain.state import Failure, Outcome
from queue_manager.domain.updates import updates_for
from queue_manager.job_contract import CommandName
from queue_manager.ports import (
    Broadcaster,
    Bus,
    Clock,
    Command,
    DataTopics,
    Launcher,
    ServiceMetrics,
    StateStore,
)
from queue_manager.services.job_specs import JobConfig, job_spec
from queue_manager.services.rate_limits import RateLimits

log = structlog.get_logger(__name__)

#: actors of the history (docs/api.md): the job launcher and its watch, and the loops that
#: repair state (reconciler, stop deadline)
LAUNCHER = "launcher"
RECONCILER = "reconciler"


@dataclass(frozen=True)
class Limits:
    """Admission (docs/operations.md): what may run at once across all replicas; unset, no
    limit. `queues` is MAX_RUNNING_QUEUES, `jobs` MAX_RUNNING_JOBS per target."""

    queues: int | None = None
    jobs: Mapping[Target, int] = field(default_factory=dict)


class Engine:
    def __init__(
        self,
        *,
        store: StateStore,
        bus: Bus,
        launcher: Launcher,
        broadcaster: Broadcaster,
        metrics: ServiceMetrics,
        clock: Clock,
        jobs: JobConfig,
        limits: Limits | None = None,
        topics: DataTopics | None = None,
        rate_limits: RateLimits | None = None,
    ) -> None:
        """`topics`: the workers' data topics (Kafka); None: there are none (in-process bus).
        `rate_limits`: the rate-limit groups whose open breakers hold their steps."""
        self.store = store
        self.bus = bus
        self.launcher = launcher
        self.broadcaster = broadcaster
        self.metrics = metrics
        self.clock = clock
        self.jobs = jobs
        self.limits = limits or Limits()
        self.topics = topics
        self.rate_limits = rate_limits
        #: (queue id, step) whose launch this process is making: a launch waits on the broker
        #: for its connectors' offsets, longer than LAUNCH_GRACE_SECONDS at worst, and the
        #: reconciler must not take such a step for one whose job never appeared
        self._launching: set[tuple[str, int]] = set()

    async def apply(
        self, queue_id: str, change: Callable[[QueueState], Outcome], *, actor: str
    ) -> tuple[QueueState | None, Outcome]:
        return (await self.apply_many({queue_id: change}, actor=actor))[queue_id]

    async def apply_many(
        self, changes: Mapping[str, Callable[[QueueState], Outcome]], *, actor: str
    ) -> dict[str, tuple[QueueState | None, Outcome]]:
        """`actor` names who caused the events no change attributed more precisely."""
        outcomes: dict[str, Outcome] = {}
        stored = await self.store.update_many(
            {q: _recorded(q, change, actor, outcomes) for q, change in changes.items()}
        )
        result: dict[str, tuple[QueueState | None, Outcome]] = {}
        freed = False
        for queue_id, queue in stored.items():
            outcome = outcomes.get(queue_id, Outcome())
            if queue is not None:
                await self._after(queue, outcome)
                freed = freed or self._frees_a_slot(queue, outcome)
            result[queue_id] = (queue, outcome)
        if freed:
            await self.admit()
            await self._advance_waiting()
        return result

    async def _after(self, queue: QueueState, outcome: Outcome) -> None:
        if outcome.changed:
            self.publish(queue, outcome.steps)
            for event in outcome.events:
                if event.kind is EventKind.STEP_WARNING and event.step is not None:
                    self.metrics.step_warning(queue.steps[event.step].target.value)
        if outcome.kill:
            await self.kill(queue, outcome.kill)
        for failure in outcome.failures:
            await self._failed(queue, failure)
        if queue.parent is not None:
            moves = [e.to for e in outcome.events if e.kind is EventKind.QUEUE_STATUS and e.to]
            for status in moves:
                self.metrics.backfill_child(status)
            if moves:
                await self.refresh_parent(queue.parent)

    async def refresh_parent(self, parent_id: str) -> None:
        """A backfill's child changed status: recount its parent."""
        await self.recount_parent(
            parent_id,
            lambda q, children: backfill.refresh(q, children, self.clock.now()),
            actor=LAUNCHER,
        )

    async def recount_parent(
        self,
        parent_id: str,
        change: Callable[[QueueState, list[QueueState]], Outcome],
        *,
        actor: str,
    ) -> None:
        """Change a backfill's parent seeing its children as they are in the same transaction."""
        outcomes: dict[str, Outcome] = {}

        def mutate(parent: QueueState, children: list[QueueState]) -> list[QueueEvent] | None:
            return _recorded(parent_id, lambda q: change(q, children), actor, outcomes)(parent)

        parent = await self.store.update_parent(parent_id, mutate)
        outcome = outcomes.get(parent_id, Outcome())
        if parent is not None and outcome.changed:
            self.publish(parent, set())

    async def _failed(self, queue: QueueState, failure: Failure) -> None:
        """An attempt failed (stored): a retried one's job goes now (the next attempt is another
        job); a rate-limited one opens its rate-limit group."""
        step = queue.steps[failure.step]
        if failure.retry_at is not None:
            self.metrics.step_retried(step.target.value, failure.error_class.value)
            log.info(
                "step retrying",
                queue_id=queue.id,
                step=failure.step,
                error_class=failure.error_class.value,
                retry_at=failure.retry_at.isoformat(),
                reason=failure.reason,
            )
            await self.delete_job(failure.job, queue.id, failure.step)
        if failure.error_class is ErrorClass.RATE_LIMITED and self.rate_limits is not None:
            await self.rate_limits.trip(
                step.target.value,
                step.type,
                failure.retry_after,
                failure.reason,
                queue_id=queue.id,
                step=failure.step,
            )

    def _frees_a_slot(self, queue: QueueState, outcome: Outcome) -> bool:
        """Did this change end a running queue or a job of a limited target?"""
        limits = self.limits
        for event in outcome.events:
            limited = limits.queues is not None or queue.parent is not None
            if event.kind is EventKind.QUEUE_STATUS and limited:
                if event.to is not None and QueueStatus(event.to).terminal:
                    return True
            elif event.kind is EventKind.STEP_STATUS and limits.jobs and event.step is not None:
                # A step retrying later has no job until then.
                ended = event.to is not None and (
                    StepStatus(event.to).terminal or event.to == StepStatus.RETRYING
                )
                if ended and queue.steps[event.step].target in limits.jobs:
                    return True
        return False

    def publish(self, queue: QueueState, steps: set[int]) -> None:
        for update in updates_for(queue, steps):
            self.broadcaster.publish(update)

    async def advance(self, queue_id: str) -> None:
        """Launch every step whose producers are far enough along (and, under MAX_RUNNING_JOBS,
        whose target has a free slot)."""
        claimed: list[int] = []
        limits = self.limits.jobs
        outcomes: dict[str, Outcome] = {}
        # An open rate-limit group holds its steps (read at most once per cache period).
        gate = await self.rate_limits.gate(queue_id) if self.rate_limits is not None else None

        def claim(queue: QueueState, running: Mapping[str, int]) -> Outcome:
            counts = {Target(t): n for t, n in running.items()}
            outcome, steps = state.claim_ready(queue, self.clock.now(), limits, counts, gate)
            claimed[:] = [s.index for s in steps]
            return outcome

        def claim_unlimited(queue: QueueState) -> Outcome:
            return claim(queue, {})

        if limits:
            targets = [t.value for t in limits]
            queue = await self.store.claim(
                queue_id,
                targets,
                lambda q, running: _recorded(
                    queue_id, lambda q2: claim(q2, running), LAUNCHER, outcomes
                )(q),
            )
            if queue is not None:
                await self._after(queue, outcomes.get(queue_id, Outcome()))
        else:
            queue, _ = await self.apply(queue_id, claim_unlimited, actor=LAUNCHER)
        if queue is None:
            return
        relaunched_loaders = {
            queue.steps[i].type
            for i in claimed
            if queue.steps[i].target is Target.LOADER and queue.steps[i].run > 0
        }
        await self.launch(queue, claimed, from_end=relaunched_loaders)

    async def _advance_waiting(self) -> None:
        """A job of a limited target ended: the steps waiting for its slot may go now."""
        if not self.limits.jobs:
            return
        for queue in await self.store.list_active():
            if any(step.waiting for step in queue.steps if step.status is StepStatus.PENDING):
                await self.advance(queue.id)

    async def admit(self) -> None:
        """Admit queued queues while MAX_RUNNING_QUEUES and each backfill's `max_parallel`
        allow (decided in the store)."""
        limit = self.limits.queues
        if limit is None and not await self.store.queued_order():
            return  # without a limit only backfill children wait: a read, not a write lock
        waited: dict[str, float] = {}
        outcomes: dict[str, Outcome] = {}

        def decide(queue: QueueState) -> list[QueueEvent]:
            at = self.clock.now()
            waited[queue.id] = (at - (queue.queued_at or at)).total_seconds()
            return (
                _recorded(queue.id, lambda q: state.admit(q, at), LAUNCHER, outcomes)(queue) or []
            )

        admitted = await self.store.admit(limit, decide)
        for queue in admitted:
            self.metrics.queue_admitted(waited[queue.id])
            await self._after(queue, outcomes.get(queue.id, Outcome()))
            log.info(
                "queue admitted",
                queue_id=queue.id,
                waited_seconds=round(waited[queue.id], 3),
                priority=queue.priority,
            )
        for queue in admitted:
            await self.advance(queue.id)

    async def launch(
        self, queue: QueueState, indexes: Iterable[int], *, from_end: Collection[str] = ()
    ) -> None:
        """Launch the steps' jobs. Every connector's consumer group is given its offsets before
        any job starts (docs/pipelines.md): the platform's connector starts at `latest`, so
        without them it would miss what its loader wrote before it joined; and a queue's
        connectors share one group, which takes no offsets while a member is in it, so the
        second connector's would wait for the first to end. `from_end`: the types whose loader
        runs again too (a retry), so what their topic already holds is an earlier run's."""
        mine = [i for i in dict.fromkeys(indexes) if (queue.id, i) not in self._launching]
        self._launching.update((queue.id, i) for i in mine)
        try:
            await self._launch(queue, mine, from_end)
        finally:
            self._launching.difference_update((queue.id, i) for i in mine)

    def launching(self, queue_id: str, index: int) -> bool:
        """Whether this process is launching the step's job now."""
        return (queue_id, index) in self._launching

    async def _launch(
        self, queue: QueueState, indexes: list[int], from_end: Collection[str]
    ) -> None:
        connectors = [
            i
            for i in indexes
            if self.topics is not None
            and queue.steps[i].target is Target.CONNECTOR
            and queue.steps[i].kafka_topic
        ]
        # At once: each positioning is a few round trips to the broker (more over SASL_SSL),
        # and the client's start request waits for them.
        ok = await asyncio.gather(*(self._position(queue, i, from_end) for i in connectors))
        failed = {i for i, done in zip(connectors, ok, strict=True) if not done}
        if connectors:
            # The positioning took round trips: a step another replica launched meanwhile, or
            # that a stop ended, is not launched again.
            try:
                queue = await self.store.get(queue.id) or queue
            except DependencyUnavailable as exc:
                # left `launching`, for the reconciler to launch again, as a failed launch
                log.warning("launch postponed", queue_id=queue.id, reason=exc.detail)
                return
        positioned = [
            i
            for i in sorted(indexes, key=lambda i: queue.steps[i].target is not Target.CONNECTOR)
            if i not in failed and queue.steps[i].status is StepStatus.LAUNCHING
        ]
        for index in positioned:
            step = queue.steps[index]
            if await self._guarded(
                queue, index, self.launcher.launch(job_spec(queue, step, self.jobs))
            ):
                self.metrics.job_launched(step.target.value, "ok")
                log.info(
                    "job launched",
                    queue_id=queue.id,
                    step=index,
                    target=step.target.value,
                    job=step.job_name,
                )

    async def _position(self, queue: QueueState, index: int, from_end: Collection[str]) -> bool:
        assert self.topics is not None
        step = queue.steps[index]
        assert step.kafka_topic is not None
        position = self.topics.position_group(
            step.kafka_topic, naming.connector_group(queue.id), at_end=step.type in from_end
        )
        return await self._guarded(queue, index, position)

    async def _guarded(self, queue: QueueState, index: int, call: Awaitable[None]) -> bool:
        """Run one step's launch call; False when it failed (a refusal fails the step; an
        unavailable dependency leaves it `launching`, for the reconciler to launch again)."""
        step = queue.steps[index]
        bound = log.bind(queue_id=queue.id, step=index, target=step.target.value)
        try:
            await call
        except LaunchFailed as exc:
            reason = f"launch refused: {exc.message}"
            self.metrics.job_launched(step.target.value, "refused")
            bound.warning("launch refused", reason=exc.message)
            await self.apply(
                queue.id,
                lambda q: state.fail_step(q, index, reason, self.clock.now()),
                actor=LAUNCHER,
            )
            return False
        except DependencyUnavailable as exc:
            self.metrics.job_launched(step.target.value, "error")
            bound.warning("launch failed, will retry", reason=exc.detail)
            return False
        return True

    async def kill(self, queue: QueueState, indexes: set[int]) -> None:
        """Tell the steps' workers to stop, then delete their jobs at once (fail-fast)."""
        await self.send_stop(queue.id)
        for index in sorted(indexes):
            await self.delete_job(queue.steps[index].job_name, queue.id, index)

    async def send_stop(self, queue_id: str) -> None:
        command = Command(
            queue_id=queue_id,
            command=CommandName.STOP,
            command_id=str(uuid.uuid4()),
            sent_at=self.clock.now().isoformat(),
        )
        await self.bus.send_command(command)
        log.info("stop command sent", queue_id=queue_id, command_id=command.command_id)

    async def delete_job(self, job_name: str, queue_id: str, step: int) -> None:
        try:
            await self.launcher.delete(job_name)
        except DependencyUnavailable as exc:
            log.warning(
                "job delete failed, reconciler will retry",
                job=job_name,
                queue_id=queue_id,
                step=step,
                reason=exc.detail,
            )


def _recorded(
    queue_id: str, change: Callable[[QueueState], Outcome], actor: str, outcomes: dict[str, Outcome]
) -> Callable[[QueueState], list[QueueEvent] | None]:
    """The store's `mutate` for a domain change: keeps its outcome, numbers its history."""

    def mutate(queue: QueueState) -> list[QueueEvent] | None:
        # The store may retry: the last run is the one stored.
        outcome = outcomes[queue_id] = change(queue)
        if not outcome.changed:
            return None
        history.stamp(outcome.events, actor)
        history.number(queue, outcome.events)
        return outcome.events

    return mutate
