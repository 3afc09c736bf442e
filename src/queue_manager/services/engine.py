"""The one path by which queue state changes: write, broadcast, then act on the outcome.

Every use case (start, stop, telemetry, job events, reconcile) calls `apply` with a domain
function. The store runs that function on the freshest copy inside its atomic update; afterwards
the engine broadcasts what changed, deletes the jobs the outcome says must go, and launches the
steps that became ready. Acting only after the write means a crash can repeat an action, never
lose one; launches and deletes are idempotent for that reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog

from queue_manager.domain import backfill, history, naming, state
from queue_manager.domain.errors import DependencyUnavailable, LaunchFailed
from queue_manager.domain.history import EventKind, QueueEvent
from queue_manager.domain.models import QueueState, QueueStatus, Step, StepStatus, Target
from queue_manager.domain.state import Outcome
from queue_manager.domain.updates import updates_for
from queue_manager.job_contract import CommandName, Reported
from queue_manager.ports import (
    Broadcaster,
    Bus,
    Command,
    DataTopics,
    JobPhase,
    JobStatus,
    Launcher,
    ServiceMetrics,
    StateStore,
)
from queue_manager.services.job_specs import JobConfig, job_spec

log = structlog.get_logger(__name__)

#: actors of the history (docs/api.md): the job launcher and its watch, and the loops that
#: repair state (reconciler, stop deadline)
LAUNCHER = "launcher"
RECONCILER = "reconciler"


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Limits:
    """Admission (docs/operations.md): what may run at once across all replicas; unset, no
    limit. `queues` is MAX_RUNNING_QUEUES, `jobs` MAX_RUNNING_JOBS per target."""

    queues: int | None = None
    jobs: Mapping[Target, int] = field(default_factory=dict)


@dataclass
class Deps:
    store: StateStore
    bus: Bus
    launcher: Launcher
    broadcaster: Broadcaster
    metrics: ServiceMetrics
    jobs: JobConfig
    stop_grace: timedelta
    launch_grace: timedelta
    limits: Limits = field(default_factory=Limits)
    #: the workers' data topics (Kafka); None: there are none (in-process bus)
    topics: DataTopics | None = None
    #: how long a job may keep running after its step reported `finished`
    finished_job_grace: timedelta = timedelta(seconds=30)


class Engine:
    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self._background: set[asyncio.Task[None]] = set()

    async def apply(
        self, queue_id: str, change: Callable[[QueueState], Outcome], *, actor: str
    ) -> tuple[QueueState | None, Outcome]:
        return (await self.apply_many({queue_id: change}, actor=actor))[queue_id]

    async def apply_many(
        self, changes: Mapping[str, Callable[[QueueState], Outcome]], *, actor: str
    ) -> dict[str, tuple[QueueState | None, Outcome]]:
        """`actor` names who caused the events no change attributed more precisely."""
        outcomes: dict[str, Outcome] = {}
        stored = await self.d.store.update_many(
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
                    self.d.metrics.step_warning(queue.steps[event.step].target.value)
        if outcome.kill:
            await self.kill(queue, outcome.kill)
        if queue.parent is not None:
            moves = [e.to for e in outcome.events if e.kind is EventKind.QUEUE_STATUS and e.to]
            for status in moves:
                self.d.metrics.backfill_child(status)
            if moves:
                await self.refresh_parent(queue.parent)

    async def refresh_parent(self, parent_id: str) -> None:
        """A backfill's child changed status: recount its parent."""
        await self.recount_parent(
            parent_id, lambda q, children: backfill.refresh(q, children, now()), actor=LAUNCHER
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

        parent = await self.d.store.update_parent(parent_id, mutate)
        outcome = outcomes.get(parent_id, Outcome())
        if parent is not None and outcome.changed:
            self.publish(parent, set())

    def _frees_a_slot(self, queue: QueueState, outcome: Outcome) -> bool:
        """Did this change end a running queue or a job of a limited target?"""
        limits = self.d.limits
        for event in outcome.events:
            limited = limits.queues is not None or queue.parent is not None
            if event.kind is EventKind.QUEUE_STATUS and limited:
                if event.to is not None and QueueStatus(event.to).terminal:
                    return True
            elif event.kind is EventKind.STEP_STATUS and limits.jobs and event.step is not None:
                ended = event.to is not None and StepStatus(event.to).terminal
                if ended and queue.steps[event.step].target in limits.jobs:
                    return True
        return False

    def publish(self, queue: QueueState, steps: set[int]) -> None:
        for update in updates_for(queue, steps):
            self.d.broadcaster.publish(update)

    async def advance(self, queue_id: str) -> None:
        """Launch every step whose producers are far enough along (and, under MAX_RUNNING_JOBS,
        whose target has a free slot)."""
        claimed: list[int] = []
        limits = self.d.limits.jobs
        outcomes: dict[str, Outcome] = {}

        def claim(queue: QueueState, running: Mapping[str, int]) -> Outcome:
            counts = {Target(t): n for t, n in running.items()}
            outcome, steps = state.claim_ready(queue, now(), limits, counts)
            claimed[:] = [s.index for s in steps]
            return outcome

        def claim_unlimited(queue: QueueState) -> Outcome:
            return claim(queue, {})

        if limits:
            targets = [t.value for t in limits]
            queue = await self.d.store.claim(
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
        # Connectors first: their consumer groups get their offsets before the loaders write.
        relaunched_loaders = {
            queue.steps[i].type
            for i in claimed
            if queue.steps[i].target is Target.LOADER and queue.steps[i].run > 0
        }
        for index in sorted(claimed, key=lambda i: queue.steps[i].target is not Target.CONNECTOR):
            step = queue.steps[index]
            await self.launch(queue, index, topic_from_end=step.type in relaunched_loaders)

    async def _advance_waiting(self) -> None:
        """A job of a limited target ended: the steps waiting for its slot may go now."""
        if not self.d.limits.jobs:
            return
        for queue in await self.d.store.list_active():
            if any(step.waiting for step in queue.steps if step.status is StepStatus.PENDING):
                await self.advance(queue.id)

    async def admit(self) -> None:
        """Admit queued queues while MAX_RUNNING_QUEUES and each backfill's `max_parallel`
        allow (decided in the store)."""
        limit = self.d.limits.queues
        if limit is None and not await self.d.store.queued_order():
            return  # without a limit only backfill children wait: a read, not a write lock
        waited: dict[str, float] = {}
        outcomes: dict[str, Outcome] = {}

        def decide(queue: QueueState) -> list[QueueEvent]:
            at = now()
            waited[queue.id] = (at - (queue.queued_at or at)).total_seconds()
            return (
                _recorded(queue.id, lambda q: state.admit(q, at), LAUNCHER, outcomes)(queue) or []
            )

        admitted = await self.d.store.admit(limit, decide)
        for queue in admitted:
            self.d.metrics.queue_admitted(waited[queue.id])
            await self._after(queue, outcomes.get(queue.id, Outcome()))
            log.info(
                "queue admitted",
                queue_id=queue.id,
                waited_seconds=round(waited[queue.id], 3),
                priority=queue.priority,
            )
        for queue in admitted:
            await self.advance(queue.id)

    async def launch(self, queue: QueueState, index: int, *, topic_from_end: bool = False) -> None:
        """Launch a step's job. A connector's consumer group is given its offsets first
        (docs/pipelines.md): the platform's connector starts at `latest`, so without them it
        would miss what its loader wrote before it joined. `topic_from_end`: its loader runs
        again too (a retry), so what the topic already holds is an earlier run's."""
        step = queue.steps[index]
        bound = log.bind(queue_id=queue.id, step=index, target=step.target.value)
        try:
            if self.d.topics is not None and step.target is Target.CONNECTOR and step.kafka_topic:
                await self.d.topics.position_group(
                    step.kafka_topic, naming.connector_group(queue.id), at_end=topic_from_end
                )
            await self.d.launcher.launch(job_spec(queue, step, self.d.jobs))
        except LaunchFailed as exc:
            reason = f"launch refused: {exc.message}"
            self.d.metrics.job_launched(step.target.value, "refused")
            bound.warning("launch refused", reason=exc.message)
            await self.apply(
                queue.id, lambda q: state.fail_step(q, index, reason, now()), actor=LAUNCHER
            )
            return
        except DependencyUnavailable as exc:
            # Left `launching`: the reconciler launches it again once the launcher is back.
            self.d.metrics.job_launched(step.target.value, "error")
            bound.warning("launch failed, will retry", reason=exc.detail)
            return
        self.d.metrics.job_launched(step.target.value, "ok")
        bound.info("job launched", job=step.job_name)

    async def kill(self, queue: QueueState, indexes: set[int]) -> None:
        """Tell the steps' workers to stop, then delete their jobs at once (fail-fast)."""
        await self.send_stop(queue.id)
        for index in sorted(indexes):
            await self._delete(queue.steps[index].job_name, queue.id, index)

    async def send_stop(self, queue_id: str) -> None:
        command = Command(
            queue_id=queue_id,
            command=CommandName.STOP,
            command_id=str(uuid.uuid4()),
            sent_at=now().isoformat(),
        )
        await self.d.bus.send_command(command)
        log.info("stop command sent", queue_id=queue_id, command_id=command.command_id)

    async def _delete(self, job_name: str, queue_id: str, step: int) -> None:
        try:
            await self.d.launcher.delete(job_name)
        except DependencyUnavailable as exc:
            log.warning(
                "job delete failed, reconciler will retry",
                job=job_name,
                queue_id=queue_id,
                step=step,
                reason=exc.detail,
            )

    # -- stop -------------------------------------------------------------------------------

    def schedule_reap(self, queue_id: str, delay: float) -> None:
        """Reap the queue once its stop deadline passed: a task that is forgotten once done (the
        reconciler reaps too, so one lost with the process costs nothing)."""
        task = asyncio.get_running_loop().create_task(self._reap_after(queue_id, delay))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _reap_after(self, queue_id: str, delay: float) -> None:
        await asyncio.sleep(max(delay, 0.0))
        try:
            await self.reap(queue_id)
        except DependencyUnavailable as exc:
            log.warning("stop deadline reap postponed", queue_id=queue_id, reason=exc.detail)

    async def reap(self, queue_id: str) -> None:
        """After the grace period: delete what still runs, every open step ends `stopped`."""
        queue = await self.d.store.get(queue_id)
        if queue is None or queue.stop_deadline is None or queue.status.terminal:
            return
        if queue.stop_deadline > now():
            return
        open_steps = [s.index for s in queue.steps if not s.status.terminal]
        for index in open_steps:
            await self._delete(queue.steps[index].job_name, queue_id, index)

        def stop_all(q: QueueState) -> Outcome:
            outcome = Outcome()
            for index in open_steps:
                outcome.merge(state.stop_step(q, index, "stopped after the grace period", now()))
            return outcome

        await self.apply(queue_id, stop_all, actor=RECONCILER)
        log.info("queue stopped", queue_id=queue_id, deleted_jobs=len(open_steps))

    # -- job events -------------------------------------------------------------------------

    async def on_job(
        self, job: JobStatus, actor: str = LAUNCHER, queue: QueueState | None = None
    ) -> bool:
        """Applies what the launcher reports of a job; whether its queue changed.

        `queue` is the job's queue as the caller read it after the job's status (the
        reconciler's one snapshot of the active queues, instead of a read per job); without it
        the queue is read here. Changes are made on the stored queue, so a snapshot that aged
        only costs a change that does nothing.
        """
        if queue is None:
            queue = await self.d.store.get(job.queue_id)
        if (
            queue is None
            or job.step_index >= len(queue.steps)
            or (queue.steps[job.step_index].job_name != job.name)
        ):
            if job.phase is JobPhase.ACTIVE:
                log.warning("deleting a job no queue knows", job=job.name, queue_id=job.queue_id)
                await self._delete(job.name, job.queue_id, job.step_index)
            return False
        index = job.step_index
        step = queue.steps[index]
        stopping = queue.stop_requested_at is not None
        if job.phase is JobPhase.ACTIVE:
            if state.ended_unfinished(step):
                await self._delete(job.name, queue.id, index)
            elif self._finished_long_ago(step):
                # The platform's loader serves HTTP forever after its last report.
                log.info(
                    "deleting the job of a finished step that still runs",
                    job=job.name,
                    queue_id=queue.id,
                    step=index,
                    grace_seconds=self.d.finished_job_grace.total_seconds(),
                )
                self.d.metrics.finished_job_ended(step.target.value)
                await self._delete(job.name, queue.id, index)
            elif job.attempts > step.attempts:
                _, outcome = await self.apply(
                    queue.id,
                    lambda q: state.set_attempts(q, index, job.attempts, now()),
                    actor=actor,
                )
                return outcome.changed
            return False
        # What the worker left as it exited stands in for final reports that never arrived
        # (the service was down longer than the worker's delivery deadline): counts only grow.
        records = job.records_written
        if records is None or records <= step.records_written:
            records = None
        if step.status.terminal:
            if records is None:
                return False
            _, outcome = await self.apply(
                queue.id, lambda q: state.job_records(q, index, records, now()), actor=actor
            )
            return outcome.changed
        ending = _ending(job, index, stopping)

        def change(q: QueueState) -> Outcome:
            outcome = Outcome() if records is None else state.job_records(q, index, records, now())
            outcome.merge(ending(q))
            return outcome

        _, outcome = await self.apply(queue.id, change, actor=actor)
        if outcome.changed:
            await self.advance(queue.id)
        return outcome.changed

    def _finished_long_ago(self, step: Step) -> bool:
        return (
            step.status is StepStatus.FINISHED
            and step.finished_at is not None
            and now() - step.finished_at >= self.d.finished_job_grace
        )

    async def drained(self, queue_id: str, index: int, detail: str) -> bool:
        """A connector drained its topic: its step ends `finished`, its job goes (the
        platform's connector never ends by itself), and its dependents launch."""
        stored, outcome = await self.apply(
            queue_id, lambda q: state.drained(q, index, detail, now()), actor=RECONCILER
        )
        if stored is None or not outcome.changed:
            return False
        step = stored.steps[index]
        self.d.metrics.connector_drained()
        log.info("connector drained", queue_id=queue_id, step=index, detail=detail)
        await self._delete(step.job_name, queue_id, index)
        await self.advance(queue_id)
        return True

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _ending(job: JobStatus, index: int, stopping: bool) -> Callable[[QueueState], Outcome]:
    """How the step of a job that ended (not ACTIVE) ends with it."""
    if stopping:
        return lambda q: state.stop_step(q, index, None, now())
    if job.phase is JobPhase.SUCCEEDED and job.outcome == Reported.INTERRUPTED:
        # Stopped by someone else than us, as its `interrupted` report (lost) would have said.
        return lambda q: state.stop_step(q, index, "interrupted", now())
    if job.phase is JobPhase.SUCCEEDED:
        return lambda q: state.finish_step(q, index, now())
    reason = job.message or ("job vanished" if job.phase is JobPhase.GONE else "job failed")
    return lambda q: state.fail_step(q, index, reason, now())


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
