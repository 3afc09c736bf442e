"""What the launcher says of a job (its watch, or the reconciler's listing) applied to the
queue: a job that ended ends its step, a job no queue knows (or whose step already ended) is
deleted, a retried one counts its attempt. Every change goes through the engine's one path."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import structlog

from queue_manager.domain import state
from queue_manager.domain.models import QueueState, Step, StepStatus
from queue_manager.domain.retry import ErrorClass, classify_report, retry_after_in
from queue_manager.domain.state import Outcome
from queue_manager.job_contract import Reported
from queue_manager.ports import Clock, JobPhase, JobStatus, ServiceMetrics, StateStore
from queue_manager.services.engine import LAUNCHER, Engine

log = structlog.get_logger(__name__)

#: queues per write when many jobs vanished at once (`JobEvents.on_gone`): one transaction
#: holds the store's write lock, so telemetry waits for at most one batch
GONE_BATCH = 500


class JobEvents:
    def __init__(
        self,
        engine: Engine,
        *,
        store: StateStore,
        metrics: ServiceMetrics,
        clock: Clock,
        finished_job_grace: timedelta = timedelta(seconds=30),
    ) -> None:
        """`finished_job_grace`: how long a job may keep running after its step reported
        `finished` (FINISHED_JOB_GRACE_SECONDS)."""
        self.engine = engine
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.finished_job_grace = finished_job_grace

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
            queue = await self.store.get(job.queue_id)
        if (
            queue is None
            or job.step_index >= len(queue.steps)
            or (queue.steps[job.step_index].job_name != job.name)
        ):
            if job.phase is JobPhase.ACTIVE:
                if queue is None or job.step_index >= len(queue.steps):
                    log.warning(
                        "deleting a job no queue knows", job=job.name, queue_id=job.queue_id
                    )
                else:
                    # A retried step's failed attempt, still going away (Kubernetes deletes in
                    # the background): expected, a thousand at once after a rate limit.
                    log.info(
                        "deleting the job of an earlier attempt",
                        job=job.name,
                        queue_id=job.queue_id,
                        step=job.step_index,
                    )
                await self.engine.delete_job(job.name, job.queue_id, job.step_index)
            return False
        index = job.step_index
        step = queue.steps[index]
        stopping = queue.stop_requested_at is not None
        now = self.clock.now
        if job.phase is JobPhase.ACTIVE:
            if state.ended_unfinished(step):
                await self.engine.delete_job(job.name, queue.id, index)
            elif self._finished_long_ago(step):
                # The platform's loader serves HTTP forever after its last report.
                log.info(
                    "deleting the job of a finished step that still runs",
                    job=job.name,
                    queue_id=queue.id,
                    step=index,
                    grace_seconds=self.finished_job_grace.total_seconds(),
                )
                self.metrics.finished_job_ended(step.target.value)
                await self.engine.delete_job(job.name, queue.id, index)
            elif (reason := self._never_started(step, job)) is not None:
                return await self._pending_too_long(job, queue.id, index, reason, actor)
            elif job.attempts > step.attempts:
                _, outcome = await self.engine.apply(
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
            _, outcome = await self.engine.apply(
                queue.id, lambda q: state.job_records(q, index, records, now()), actor=actor
            )
            return outcome.changed
        ending = _ending(job, index, stopping, now)

        def change(q: QueueState) -> Outcome:
            outcome = Outcome() if records is None else state.job_records(q, index, records, now())
            outcome.merge(ending(q))
            return outcome

        _, outcome = await self.engine.apply(queue.id, change, actor=actor)
        if outcome.changed and job.error_class in _NEVER_RAN:
            # Failed by what its pod says (an image that cannot be pulled): the Job itself
            # would wait forever.
            await self.engine.delete_job(job.name, queue.id, index)
        if outcome.changed:
            await self.engine.advance(queue.id)
        return outcome.changed

    async def on_gone(self, gone: Sequence[tuple[QueueState, int]], actor: str) -> list[str]:
        """Steps whose jobs vanished without a word of their end (the reconciler's finding),
        each ended as `on_job` ends it, in one write per GONE_BATCH queues: a restart that lost
        thousands of workers ends them in a few transactions, not one each. The ids of the
        queues that changed; what they may launch next is the caller's (the reconciler advances
        every active queue with ready steps right after, from a fresh read)."""
        endings: dict[str, list[Callable[[QueueState], Outcome]]] = {}
        for queue, index in gone:
            job = JobStatus(
                name=queue.steps[index].job_name,
                queue_id=queue.id,
                step_index=index,
                phase=JobPhase.GONE,
                message="job vanished without reporting an end",
            )
            stopping = queue.stop_requested_at is not None
            endings.setdefault(queue.id, []).append(_ending(job, index, stopping, self.clock.now))
        ids = list(endings)
        changed: list[str] = []
        for start in range(0, len(ids), GONE_BATCH):
            some = {
                queue_id: _together(endings[queue_id])
                for queue_id in ids[start : start + GONE_BATCH]
            }
            stored = await self.engine.apply_many(some, actor=actor)
            changed += [q for q, (queue, outcome) in stored.items() if queue and outcome.changed]
        return changed

    def _never_started(self, step: Step, job: JobStatus) -> str | None:
        """Why a step launched and never started is failed now: launched longer than its
        `pending_timeout` ago and no report from its worker (docs/operations.md "Timeouts").
        Looked at on every word of the launcher on the job: its watch, and each reconcile pass
        (RECONCILE_SECONDS), which is how soon after the time-out it fails."""
        limit = step.pending_timeout
        if limit is None or step.status is not StepStatus.LAUNCHING or step.launched_at is None:
            return None
        if (self.clock.now() - step.launched_at).total_seconds() < limit:
            return None
        why = (
            job.message
            if job.error_class == ErrorClass.PENDING and job.message
            else "the job's worker never reported"
        )
        return f"pending: not started within {limit:g} s of its launch: {why}"

    async def _pending_too_long(
        self, job: JobStatus, queue_id: str, index: int, reason: str, actor: str
    ) -> bool:
        stored, outcome = await self.engine.apply(
            queue_id,
            lambda q: state.fail_step(q, index, reason, self.clock.now(), ErrorClass.PENDING),
            actor=actor,
        )
        if stored is None or not outcome.changed:
            return False
        log.warning(
            "step never started", job=job.name, queue_id=queue_id, step=index, reason=reason
        )
        await self.engine.delete_job(job.name, queue_id, index)
        await self.engine.advance(queue_id)
        return True

    def _finished_long_ago(self, step: Step) -> bool:
        return (
            step.status is StepStatus.FINISHED
            and step.finished_at is not None
            and self.clock.now() - step.finished_at >= self.finished_job_grace
        )


def _together(
    changes: Sequence[Callable[[QueueState], Outcome]],
) -> Callable[[QueueState], Outcome]:
    def change(queue: QueueState) -> Outcome:
        outcome = Outcome()
        for one in changes:
            outcome.merge(one(queue))
        return outcome

    return change


def _ending(
    job: JobStatus, index: int, stopping: bool, now: Callable[[], datetime]
) -> Callable[[QueueState], Outcome]:
    """How the step of a job that ended (not ACTIVE) ends with it."""
    if stopping:
        return lambda q: state.stop_step(q, index, None, now())
    if job.phase is JobPhase.SUCCEEDED and job.outcome == Reported.INTERRUPTED:
        # Stopped by someone else than us, as its `interrupted` report (lost) would have said.
        return lambda q: state.stop_step(q, index, "interrupted", now())
    if job.phase is JobPhase.SUCCEEDED:
        return lambda q: state.finish_step(q, index, now())
    reason = job.message or ("job vanished" if job.phase is JobPhase.GONE else "job failed")
    error_class, retry_after = failure_class(job, reason)
    return lambda q: state.fail_step(q, index, reason, now(), error_class, retry_after)


def failure_class(job: JobStatus, reason: str) -> tuple[ErrorClass, float | None]:
    """The class of a failed job (docs/operations.md "Error classes"): the launcher's word
    (OOMKilled, image pull error...), else what its message says, as a worker's `error` report
    is read (the exit file's error message: a 429 the worker's report did not get through)."""
    if job.error_class:
        try:
            return ErrorClass(job.error_class), retry_after_in(reason)
        except ValueError:
            pass
    return classify_report(None, None, reason), retry_after_in(reason)


#: launcher classes of a job whose pod never ran: it is deleted once its step failed
_NEVER_RAN = frozenset({ErrorClass.CONFIGURATION.value, ErrorClass.PENDING.value})
