"""The state machine of docs/api.md: every change to a queue goes through these functions.

They mutate the queue in place (the store hands them a fresh copy inside its update) and report
what changed, so the caller can broadcast it and act on it. Rules kept here, nowhere else:
steps only move forward, terminal states are sticky, counters only grow, a failed step fails
the queue fast, and the queue status is derived from its steps.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import msgspec

from queue_manager.domain import history, naming
from queue_manager.domain.errors import Conflict, InvalidRequest
from queue_manager.domain.history import EventKind, QueueEvent
from queue_manager.domain.models import (
    RUNNING_QUEUE_STATUSES,
    Ending,
    QueueState,
    QueueStatus,
    Step,
    StepStatus,
    Target,
)
from queue_manager.domain.planner import ready_steps
from queue_manager.domain.retry import Attempt, ErrorClass, classify_report, retry_after_in
from queue_manager.domain.spans import add_report
from queue_manager.domain.telemetry import (
    CoverageReport,
    Reported,
    TelemetryEvent,
    step_status,
)


@dataclass(frozen=True)
class Failure:
    """A step's attempt failed (`fail_step`): what the engine acts on once it is stored."""

    step: int
    error_class: ErrorClass
    reason: str
    retry_after: float | None
    #: the job of the failed attempt
    job: str
    #: set when its retry policy retries it: when the next attempt starts
    retry_at: datetime | None = None


@dataclass
class Outcome:
    changed: bool = False
    #: a step changed status (not just progress): dependents may be ready to launch
    transitioned: bool = False
    steps: set[int] = field(default_factory=set)
    #: steps whose jobs must go now (fail-fast, or a step stopped behind the service's back)
    kill: set[int] = field(default_factory=set)
    #: the history of this change, stored with it
    events: list[QueueEvent] = field(default_factory=list)
    #: attempts that failed in this change (a retried one's job must go)
    failures: list[Failure] = field(default_factory=list)

    def touch(self, step: Step) -> None:
        self.changed = True
        self.steps.add(step.index)

    def merge(self, other: Outcome) -> None:
        self.changed |= other.changed
        self.transitioned |= other.transitioned
        self.steps |= other.steps
        self.kill |= other.kill
        self.events += other.events
        self.failures += other.failures

    def record(
        self,
        kind: EventKind,
        at: datetime,
        *,
        step: int | None = None,
        from_: str | None = None,
        to: str | None = None,
        message: str | None = None,
    ) -> None:
        self.changed = True
        self.events.append(
            QueueEvent(at=at, kind=kind, step=step, from_=from_, to=to, message=message)
        )


def _advance(step: Step, status: StepStatus, now: datetime, out: Outcome) -> bool:
    if step.status.terminal or status.rank < step.status.rank or status is step.status:
        return False
    # Its message (the step's error) is filled in by `settle`, once the caller has set it.
    out.record(EventKind.STEP_STATUS, now, step=step.index, from_=step.status, to=status)
    step.status = status
    out.transitioned = True
    if status in (StepStatus.STARTED, StepStatus.LOADING) and step.started_at is None:
        step.started_at = now
    if status.terminal and step.finished_at is None:
        step.finished_at = now
    if status.terminal:
        _close_attempt(step, now, step.error_class if status is StepStatus.ERROR else None)
    out.touch(step)
    return True


#: the most attempts a step's `attempts_log` keeps (the latest)
MAX_ATTEMPTS_LOG = 100


def _open_attempt(step: Step, now: datetime) -> None:
    """A launch: the step's next attempt begins."""
    log = step.attempts_log
    if log and log[-1].ended_at is None:
        return  # launched again before it ended (the reconciler's relaunch): the same attempt
    log.append(Attempt(attempt=log[-1].attempt + 1 if log else 1, started_at=now))
    del log[:-MAX_ATTEMPTS_LOG]


def _close_attempt(
    step: Step,
    now: datetime,
    error_class: ErrorClass | None,
    reason: str | None = None,
    retry_at: datetime | None = None,
) -> None:
    log = step.attempts_log
    if not log or log[-1].ended_at is not None:
        return
    attempt = log[-1]
    attempt.ended_at = now
    attempt.error_class = error_class
    attempt.reason = reason if reason is not None else step.error_message
    attempt.retry_at = retry_at


def _grow(step: Step, records: int | None, last_ts: datetime | None, out: Outcome) -> None:
    if records is not None and records > step.records_written:
        step.records_written = records
        out.touch(step)
    if last_ts is not None and (
        step.last_loaded_timestamp is None or last_ts > step.last_loaded_timestamp
    ):
        step.last_loaded_timestamp = last_ts
        out.touch(step)


def _cover(step: Step, event: TelemetryEvent, out: Outcome) -> None:
    """A worker's exact coverage (docs/coverage.md), added to what its step reported before."""
    assert event.coverage is not None
    reported = add_report(
        step.coverage,
        ((s.start, s.end) for s in event.coverage.loaded),
        ((s.start, s.end) for s in event.coverage.gaps),
    )
    if reported != step.coverage:
        step.coverage = reported
        out.touch(step)


def ended_unfinished(step: Step) -> bool:
    """The step ended other than by finishing (error, stopped, skipped): its job must not run."""
    return step.status.terminal and step.status is not StepStatus.FINISHED


def worker_must_stop(queue: QueueState, step: Step | None) -> bool:
    """What a worker polling for commands is told (docs/worker-protocol.md): stop once its queue
    is being stopped or has ended, or its own step ended unfinished."""
    return (
        queue.stop_requested_at is not None
        or queue.status.terminal
        or (step is not None and ended_unfinished(step))
    )


def run_over(queue: QueueState, producer: str) -> str | None:
    """Why the worker of the step run `producer` may no longer speak for `queue` (its
    credential dies with its run, docs/security.md): the run ended, or a retry replaced it (a
    new run has a new producer id). None while the run is open."""
    step = queue.step_by_producer(producer)
    if step is None:
        return (
            f"{producer} is no step run of queue {queue.id} now: a run's credential ends when a "
            "retry replaces it"
        )
    if step.status.terminal:
        return (
            f"step {step.index} ({step.target.value}) run {step.run} has ended "
            f"({step.status.value}): its worker credential no longer holds"
        )
    return None


def find_step(queue: QueueState, event: TelemetryEvent) -> Step | None:
    if event.producer:
        # A producer no step has is another run's (or nobody's): never guess a step for it.
        return queue.step_by_producer(event.producer)
    if len(queue.steps) == 1:
        return queue.steps[0]
    if event.step_type:
        matching = [s for s in queue.steps if s.type == event.step_type]
        if len(matching) == 1:
            return matching[0]
    return None


def apply_telemetry(
    queue: QueueState, step: Step, event: TelemetryEvent, now: datetime, window: float = 0.0
) -> Outcome:
    out = _apply(queue, step, event, now)
    if step.ending is not None and window <= 0:
        _release(queue, step, now, out)
    return settle(queue, now, out)


def apply_telemetry_batch(
    queue: QueueState, events: Sequence[TelemetryEvent], now: datetime, window: float = 0.0
) -> tuple[Outcome, list[TelemetryEvent]]:
    """Apply a queue's events in the order their workers sent them: the same queue and history
    as `apply_telemetry` one event at a time, at a fraction of the cost (the dispatcher applies
    a fetched batch this way).

    The platform's workers send unkeyed reports, which partitions deliver out of order: the
    batch is put in `sent_at` order first, and a terminal report waits `window` seconds (as the
    step's `ending`) for an earlier-sent one that may still be on its way (`release_endings`).
    A run of reports from one worker with one status changes nothing but the counters, which
    only grow, so the run folds into its largest values first; `settle` runs after each status
    transition (the next event's rules read the queue status) and once at the end. Returns the
    merged outcome and the events that matched no step; history names `telemetry:<producer>`."""
    total = Outcome()
    unknown: list[TelemetryEvent] = []
    for event in _fold_progress(_in_sent_order(events, now)):
        step = find_step(queue, event)
        if step is None:
            unknown.append(event)
            continue
        applied = _apply(queue, step, event, now)
        if window <= 0 and step.ending is not None:
            _release(queue, step, now, applied)
        if applied.transitioned:
            settle(queue, now, applied)
        history.stamp(applied.events, f"telemetry:{event.producer or step.telemetry_id}")
        total.merge(applied)
    released = release_endings(queue, now, window)
    total.merge(released)
    return settle(queue, now, total), unknown


def _in_sent_order(events: Sequence[TelemetryEvent], now: datetime) -> Sequence[TelemetryEvent]:
    """Stable, so reports without `sent_at` (taken as sent on receipt) keep their place among
    themselves; a batch already in order (a keyed worker's) is not copied."""
    stamps = [event.sent_at or now for event in events]
    if all(a <= b for a, b in itertools.pairwise(stamps)):
        return events
    order = sorted(range(len(events)), key=stamps.__getitem__)
    return [events[i] for i in order]


def release_endings(queue: QueueState, now: datetime, window: float) -> Outcome:
    """Apply the held terminal reports whose reorder window has passed (all of them with a
    window of 0): each ends its step as the report says."""
    out = Outcome()
    for step in queue.steps:
        ending = step.ending
        if ending is not None and (now - ending.received_at).total_seconds() >= window:
            _release(queue, step, now, out)
    return out


def _release(queue: QueueState, step: Step, now: datetime, out: Outcome) -> None:
    ending = step.ending
    assert ending is not None
    step.ending = None
    out.touch(step)
    if ending.status is StepStatus.ERROR:
        message = ending.message or "worker reported an error"
        error_class = ending.error_class or ErrorClass.ERROR
        _fail(queue, step, message, now, out, error_class, ending.retry_after)
    elif ending.status is StepStatus.STOPPED:
        if _advance(step, StepStatus.STOPPED, now, out) and queue.stop_requested_at is None:
            step.error_message = ending.message or "interrupted"
    else:
        _advance(step, ending.status, now, out)
    if out.transitioned:
        settle(queue, now, out)


def pending_release(queue: QueueState) -> datetime | None:
    """When the earliest held terminal report of the queue was received, if any."""
    held = [s.ending.received_at for s in queue.steps if s.ending is not None]
    return min(held) if held else None


_PROGRESS = frozenset({Reported.STARTED, Reported.LOADING, Reported.FINISHED, Reported.PONG})


def _fold_progress(events: Sequence[TelemetryEvent]) -> list[TelemetryEvent]:
    """Consecutive reports of one worker and status as one, with the run's largest counters:
    applying them in turn moves the status once and keeps only the maximum of each counter."""
    folded: list[TelemetryEvent] = []
    last: TelemetryEvent | None = None
    for event in events:
        if (
            last is not None
            and event.status is last.status
            and event.status in _PROGRESS
            and event.producer == last.producer
            and event.step_type == last.step_type
        ):
            records, stamp = event.records_written, event.last_loaded_timestamp
            if records is not None and (
                last.records_written is None or records > last.records_written
            ):
                last.records_written = records
            if stamp is not None and (
                last.last_loaded_timestamp is None or stamp > last.last_loaded_timestamp
            ):
                last.last_loaded_timestamp = stamp
            if event.coverage is not None:
                # reports only add spans: the folded one carries them all
                before = last.coverage or CoverageReport()
                last.coverage = CoverageReport(
                    loaded=[*before.loaded, *event.coverage.loaded],
                    gaps=[*before.gaps, *event.coverage.gaps],
                )
            continue
        last = msgspec.structs.replace(event)
        folded.append(last)
    return folded


def _heard(step: Step, now: datetime, out: Outcome) -> None:
    """Any report of a step's worker, a `pong` too, says it is alive (domain/stalls.py):
    kept only for a step with `stall_after`, or one that was pinged."""
    if step.status.terminal or (step.stall_after is None and step.pinged_at is None):
        return
    step.last_seen, step.pinged_at = now, None
    out.touch(step)


def _apply(queue: QueueState, step: Step, event: TelemetryEvent, now: datetime) -> Outcome:
    out = Outcome()
    _heard(step, now, out)
    status = step_status(event.status)
    _grow(step, event.records_written, event.last_loaded_timestamp, out)
    if event.coverage is not None:
        _cover(step, event, out)
    if status is StepStatus.ERROR:
        message = event.error_message or event.message or "worker reported an error"
        if event.finished is False:
            _warn(step, message, event.sent_at or now, now, out)
        elif step.attempts <= step.max_retries:
            # The job will be retried (backoffLimit / local restart): remember why, keep going.
            if not step.status.terminal and step.error_message != message:
                step.error_message = message
                out.touch(step)
        else:
            _hold_ending(step, status, message, event, now, out)
    elif status is StepStatus.STOPPED:
        _hold_ending(step, status, event.message, event, now, out)
    elif status is StepStatus.FINISHED:
        _hold_ending(step, status, None, event, now, out)
    elif status is not None:
        _advance(step, status, now, out)
    return out


def _hold_ending(
    step: Step,
    status: StepStatus,
    message: str | None,
    event: TelemetryEvent,
    now: datetime,
    out: Outcome,
) -> None:
    """Keep the earliest-sent terminal report of the step until `release_endings`."""
    if step.status.terminal:
        return
    held = step.ending
    if held is not None and not _sent_before(event.sent_at, held.sent_at):
        return
    step.ending = Ending(
        status=status,
        message=message,
        sent_at=event.sent_at,
        received_at=held.received_at if held is not None else now,
    )
    if status is StepStatus.ERROR:
        # docs/operations.md "Error classes": the worker's own word first, then its message.
        step.ending.error_class = classify_report(event.error_class, event.http_status, message)
        step.ending.retry_after = (
            event.retry_after if event.retry_after is not None else retry_after_in(message)
        )
    out.touch(step)


def _sent_before(sent: datetime | None, than: datetime | None) -> bool:
    return sent is not None and (than is None or sent < than)


MAX_WARNING_STAMPS = 32


def _warn(step: Step, message: str, sent_at: datetime, now: datetime, out: Outcome) -> None:
    """A recoverable error: counted once (a redelivered report has a stamp seen already), the
    latest-sent one's message kept, the step goes on."""
    if step.status.terminal or sent_at in step.warning_stamps:
        return
    step.warning_stamps = sorted([*step.warning_stamps, sent_at])[-MAX_WARNING_STAMPS:]
    step.warnings += 1
    if step.last_warning_at is None or sent_at >= step.last_warning_at:
        step.last_warning, step.last_warning_at = message, sent_at
    out.touch(step)
    out.record(EventKind.STEP_WARNING, now, step=step.index, to="warning", message=message)


def _fail(
    queue: QueueState,
    step: Step,
    message: str,
    now: datetime,
    out: Outcome,
    error_class: ErrorClass = ErrorClass.ERROR,
    retry_after: float | None = None,
) -> None:
    if step.status.terminal or step.status is StepStatus.RETRYING:
        return  # an attempt ends once: a later word on it (its job's end) changes nothing
    failure = Failure(step.index, error_class, message, retry_after, step.job_name)
    step.error_message = message
    step.error_class = error_class
    if _retries(queue, step, error_class):
        _retry_later(queue, step, failure, now, out)
        return
    out.failures.append(failure)
    _advance(step, StepStatus.ERROR, now, out)
    if queue.stop_requested_at is not None or queue.status.terminal:
        return
    if queue.error_message is None:
        queue.error_message = f"step {step.index} ({step.target.value}) failed: {message}"
    for other in queue.steps:
        if other.status is StepStatus.PENDING:
            _advance(other, StepStatus.SKIPPED, now, out)
        elif other.status is StepStatus.RETRYING:
            other.error_message = f"stopped: step {step.index} failed; its retry is cancelled"
            other.retry_at = None
            _advance(other, StepStatus.STOPPED, now, out)
        elif other.status.running:
            other.error_message = f"stopped: step {step.index} failed"
            _advance(other, StepStatus.STOPPED, now, out)
            out.kill.add(other.index)


def _retries(queue: QueueState, step: Step, error_class: ErrorClass) -> bool:
    """Does the step's policy retry this failure now (docs/pipelines.md "Retry")? Never while
    its queue stops or has ended, nor past the runs a step may have (naming.MAX_RUN)."""
    return (
        step.retry is not None
        and step.retry.retries(error_class, step.retries)
        and queue.stop_requested_at is None
        and not queue.status.terminal
        and step.run < naming.MAX_RUN
    )


def _retry_later(
    queue: QueueState, step: Step, failure: Failure, now: datetime, out: Outcome
) -> None:
    """The attempt failed and its policy retries it: the step waits `retrying` until
    `retry_at` (never before the exchange's Retry-After), then `relaunch_due` runs it again.
    The failed attempt's run ends here: its job goes and its worker's credential with it (the
    next attempt is a new run, a new job name and producer id), so a late word of the failed
    attempt matches no step."""
    assert step.retry is not None
    number = step.retries + 1
    retry_at = step.retry.next_at(now, number, failure.retry_after)
    out.failures.append(
        Failure(
            failure.step,
            failure.error_class,
            failure.reason,
            failure.retry_after,
            failure.job,
            retry_at,
        )
    )
    _close_attempt(step, now, failure.error_class, failure.reason, retry_at)
    wait = (retry_at - now).total_seconds()
    # One event per transition, as every status change (the history's chains stay whole).
    out.record(
        EventKind.STEP_STATUS,
        now,
        step=step.index,
        from_=step.status,
        to=StepStatus.RETRYING,
        message=f"{failure.error_class.value}: {failure.reason}; retry {number} of "
        f"{step.retry.limit} at {retry_at.isoformat()} (in {wait:.1f} s)",
    )
    step.status = StepStatus.RETRYING
    step.retries = number
    step.retry_at = retry_at
    step.ending = None
    step.waiting = None
    step.run += 1
    step.job_name = naming.job_name(queue.id, step.index, step.target, step.run)
    step.telemetry_id = naming.telemetry_id(queue.id, step.index, step.target, step.run)
    out.transitioned = True
    out.touch(step)


def fail_step(
    queue: QueueState,
    index: int,
    message: str,
    now: datetime,
    error_class: ErrorClass = ErrorClass.ERROR,
    retry_after: float | None = None,
) -> Outcome:
    """An attempt of the step failed: it is retried as its policy says (`retrying` until its
    `retry_at`), or the step fails, and with it the queue (fail-fast).

    A failure of no particular class (its job's exit code) while the step holds its worker's
    own `error` report for the reorder window is that report's: the report ends the attempt
    now, with its class and Retry-After (docs/operations.md "Error classes")."""
    out = Outcome()
    step = queue.steps[index]
    held = step.ending
    if error_class is ErrorClass.ERROR and held is not None and held.status is StepStatus.ERROR:
        _release(queue, step, now, out)
        return settle(queue, now, out)
    _fail(queue, step, message, now, out, error_class, retry_after)
    return settle(queue, now, out)


def relaunch_due(queue: QueueState, now: datetime) -> Outcome:
    """Every `retrying` step whose `retry_at` has come goes back to `pending`, for the usual
    launch path to launch (and the rate-limit group, MAX_RUNNING_JOBS, to hold if they must).
    Stored with a compare-and-set like every change: one replica does it, once."""
    out = Outcome()
    if queue.stop_requested_at is not None or queue.status.terminal:
        return out
    for step in queue.steps:
        if step.status is not StepStatus.RETRYING:
            continue
        if step.retry_at is not None and step.retry_at > now:
            continue
        limit = step.retry.limit if step.retry is not None else step.retries
        out.record(
            EventKind.STEP_STATUS,
            now,
            step=step.index,
            from_=step.status,
            to=StepStatus.PENDING,
            message=f"retry {step.retries} of {limit}: attempt {step.attempts + 1} launches",
        )
        step.status = StepStatus.PENDING
        step.retry_at = None
        step.attempts += 1
        step.started_at = step.finished_at = step.launched_at = None
        step.error_message = None
        out.transitioned = True
        out.touch(step)
    return settle(queue, now, out)


def next_retry(queue: QueueState) -> datetime | None:
    """When the earliest `retrying` step of the queue is due, if any."""
    due = [s.retry_at for s in queue.steps if s.status is StepStatus.RETRYING and s.retry_at]
    return min(due) if due else None


def finish_step(queue: QueueState, index: int, now: datetime) -> Outcome:
    """A job succeeded: the step is finished even if its last telemetry got lost."""
    out = Outcome()
    _advance(queue.steps[index], StepStatus.FINISHED, now, out)
    return settle(queue, now, out)


def job_records(queue: QueueState, index: int, records_written: int, now: datetime) -> Outcome:
    """The records an ended job's worker said it wrote in all as it exited (its exit file),
    for when its last reports were lost: they grow the step's count as a report would, even
    once the step ended, and never lower it."""
    out = Outcome()
    _grow(queue.steps[index], records_written, None, out)
    return settle(queue, now, out)


def drained(queue: QueueState, index: int, detail: str, now: datetime) -> Outcome:
    """A connector consumed everything its finished producers wrote: it ends `finished`, so
    its dependents start (docs/pipelines.md); its job is then deleted."""
    out = Outcome()
    step = queue.steps[index]
    if _advance(step, StepStatus.FINISHED, now, out):
        step.ending = None
        out.events[-1].message = f"drained: {detail}"
    return settle(queue, now, out)


def stop_step(queue: QueueState, index: int, message: str | None, now: datetime) -> Outcome:
    out = Outcome()
    step = queue.steps[index]
    if _advance(step, StepStatus.STOPPED, now, out) and message:
        step.error_message = message
        if step.attempts_log and step.attempts_log[-1].ended_at == now:
            step.attempts_log[-1].reason = message
    step.retry_at = None
    return settle(queue, now, out)


def set_attempts(queue: QueueState, index: int, attempts: int, now: datetime) -> Outcome:
    out = Outcome()
    step = queue.steps[index]
    if attempts > step.attempts and not step.status.terminal:
        out.record(
            EventKind.STEP_ATTEMPT,
            now,
            step=index,
            from_=str(step.attempts),
            to=str(attempts),
            message=f"job restarted: attempt {attempts} of {step.max_retries + 1}",
        )
        step.attempts = attempts
        out.touch(step)
    return out


def claim_ready(
    queue: QueueState,
    now: datetime,
    limits: Mapping[Target, int] | None = None,
    running: Mapping[Target, int] | None = None,
    gate: Callable[[Step], str | None] | None = None,
) -> tuple[Outcome, list[Step]]:
    """Mark every step that may launch now as `launching`; the caller launches exactly those.

    A step whose target already runs `limits[target]` jobs (`running`, across all queues), or
    that `gate` holds (its rate-limit group is open: `gate` says why), stays `pending` with the
    reason in `waiting`. Loops because a connector becomes ready the moment its loader is
    claimed.
    """
    out = Outcome()
    claimed: list[Step] = []
    free = {t: n - (running or {}).get(t, 0) for t, n in (limits or {}).items()}
    held: set[int] = set()
    while True:
        ready = [s for s in ready_steps(queue) if s.index not in held]
        if not ready:
            break
        for step in ready:
            reason = gate(step) if gate is not None else None
            if reason is not None:
                held.add(step.index)
                _wait(step, reason, now, out)
                continue
            if step.target in free:
                if free[step.target] <= 0:
                    held.add(step.index)
                    _hold(step, (limits or {})[step.target], now, out)
                    continue
                free[step.target] -= 1
            _advance(step, StepStatus.LAUNCHING, now, out)
            step.attempts = max(step.attempts, 1)
            step.launched_at = now
            _open_attempt(step, now)
            step.waiting = None
            claimed.append(step)
        settle(queue, now, out)
    return settle(queue, now, out), claimed


def _hold(step: Step, limit: int, now: datetime, out: Outcome) -> None:
    reason = f"waiting for a {step.target.value} slot: MAX_RUNNING_JOBS allows {limit} at once"
    _wait(step, reason, now, out)


def _wait(step: Step, reason: str, now: datetime, out: Outcome) -> None:
    if step.waiting == reason:
        return  # said once in the history, not at every attempt
    step.waiting = reason
    out.touch(step)
    out.record(EventKind.ADMISSION, now, step=step.index, to="waiting", message=reason)


def admit(queue: QueueState, now: datetime) -> Outcome:
    """Let a `queued` queue run: its steps launch by the usual rules from now on."""
    out = Outcome()
    if queue.queued_at is None or queue.status is not QueueStatus.QUEUED:
        return out
    waited = (now - queue.queued_at).total_seconds()
    queue.queued_at = None
    out.record(
        EventKind.ADMISSION,
        now,
        from_=QueueStatus.QUEUED,
        to="admitted",
        message=f"admitted after {waited:.1f} s waiting (priority {queue.priority})",
    )
    return settle(queue, now, out)


def request_stop(
    queue: QueueState, now: datetime, grace: timedelta, actor: str | None = None
) -> Outcome:
    out = Outcome()
    if queue.status in (QueueStatus.FINISHED, QueueStatus.ERROR):
        raise Conflict(
            f"Queue {queue.id} is already {queue.status.value}; "
            "only a running queue can be stopped",
            data={"queue_id": queue.id, "status": queue.status.value},
        )
    if queue.status.terminal or queue.stop_requested_at is not None:
        return out  # stopping twice is fine and changes nothing
    queue.stop_requested_at = now
    queue.stop_deadline = now + grace
    queue.stopped_by = actor
    out.record(
        EventKind.COMMAND,
        now,
        to="stop",
        message="stop requested: workers told to stop, jobs deleted after "
        f"{grace.total_seconds():g} s",
    )
    for step in queue.steps:
        if step.status in (StepStatus.PENDING, StepStatus.RETRYING):
            step.retry_at = None
            _advance(step, StepStatus.STOPPED, now, out)
    return settle(queue, now, out)


def retry(
    queue: QueueState, now: datetime, from_step: int | None = None, *, queued: bool = False
) -> Outcome:
    """Run again what did not finish (and, with `from_step`, that step and everything
    downstream of it), reusing the outputs of the finished steps. Same queue, new run; with
    `queued` (an admission limit is set) it waits for admission again like a new queue.

    The re-run steps get a new run number, hence a new job name and producer id: a late report
    or job event of the earlier run matches no step and changes nothing.
    """
    if queue.status not in (QueueStatus.ERROR, QueueStatus.STOPPED):
        raise Conflict(
            f"Queue {queue.id} is {queue.status.value}; only an error or stopped queue can be "
            "retried",
            data={"queue_id": queue.id, "status": queue.status.value},
        )
    if from_step is not None and not 0 <= from_step < len(queue.steps):
        raise InvalidRequest(
            [{"field": "from_step", "message": f"must be a step index, 0..{len(queue.steps) - 1}"}]
        )
    rerun = {s.index for s in queue.steps if s.status is not StepStatus.FINISHED}
    if from_step is not None:
        rerun |= downstream(queue, from_step)
    if any(queue.steps[i].run >= naming.MAX_RUN for i in rerun):
        raise Conflict(
            f"Queue {queue.id} was retried {naming.MAX_RUN} times; resubmit it instead",
            data={"queue_id": queue.id},
        )
    out = Outcome(changed=True, transitioned=True)
    rerun_text = ", ".join(str(i) for i in sorted(rerun))
    out.record(
        EventKind.COMMAND,
        now,
        to="retry",
        message=f"retry {queue.retries + 1}"
        + (f" from step {from_step}" if from_step is not None else "")
        + f": steps {rerun_text} run again",
    )
    for index in sorted(rerun):
        step = queue.steps[index]
        out.record(EventKind.STEP_STATUS, now, step=index, from_=step.status, to=StepStatus.PENDING)
        step.run += 1
        step.attempts += 1
        step.job_name = naming.job_name(queue.id, index, step.target, step.run)
        step.telemetry_id = naming.telemetry_id(queue.id, index, step.target, step.run)
        step.status = StepStatus.PENDING
        step.error_message = None
        step.ending = None
        step.started_at = step.finished_at = step.launched_at = None
        # A retry by hand starts the step's retry policy afresh.
        step.retries = 0
        step.retry_at = None
        out.touch(step)
    queue.retries += 1
    queue.error_message = None
    queue.stop_requested_at = queue.stop_deadline = queue.finished_at = None
    queue.stopped_by = None
    queue.queued_at = now if queued else None
    reopen_status(queue, now, out)
    return settle(queue, now, out)


def reopen_status(queue: QueueState, now: datetime, out: Outcome) -> None:
    """The one transition out of a terminal status (a retry): the queue runs again."""
    _set_status(queue, derive_status(queue), now, out)


def downstream(queue: QueueState, index: int) -> set[int]:
    """The step and every step that depends on it, directly or not."""
    found = {index}
    grew = True
    while grew:
        grew = False
        for step in queue.steps:
            if step.index not in found and found & set(step.depends_on):
                found.add(step.index)
                grew = True
    return found


def force_deadline(queue: QueueState, now: datetime) -> Outcome:
    out = Outcome()
    running = queue.stop_requested_at is not None and not queue.status.terminal
    if running and (queue.stop_deadline is None or queue.stop_deadline > now):
        queue.stop_deadline = now
        out.record(EventKind.COMMAND, now, to="force-stop", message="jobs deleted at once")
    return out


def derive_status(queue: QueueState) -> QueueStatus:
    if queue.backfill is not None:
        return _parent_status(queue)
    statuses = [s.status for s in queue.steps]
    open_steps = any(not s.terminal for s in statuses)
    if StepStatus.ERROR in statuses and queue.stop_requested_at is None:
        return QueueStatus.ERROR
    if queue.stop_requested_at is not None:
        return QueueStatus.STOPPING if open_steps else QueueStatus.STOPPED
    if not open_steps:
        if all(s is StepStatus.FINISHED for s in statuses):
            return QueueStatus.FINISHED
        return QueueStatus.ERROR if StepStatus.ERROR in statuses else QueueStatus.STOPPED
    if queue.queued_at is not None:
        return QueueStatus.QUEUED
    if all(s is StepStatus.PENDING for s in statuses) and not any(s.retries for s in queue.steps):
        # (a step relaunched by its retry policy ran already: its queue stays loading)
        return QueueStatus.PENDING
    return QueueStatus.LOADING


def _parent_status(queue: QueueState) -> QueueStatus:
    """A backfill's parent has no steps: its status follows its children's."""
    assert queue.backfill is not None
    count = queue.backfill.progress.get
    ended = sum(count(s.value, 0) for s in QueueStatus if s.terminal)
    open_children = queue.backfill.children - ended
    if queue.stop_requested_at is not None:
        return QueueStatus.STOPPING if open_children else QueueStatus.STOPPED
    if not open_children:
        if count(QueueStatus.FINISHED.value, 0) == queue.backfill.children:
            return QueueStatus.FINISHED
        return QueueStatus.ERROR if count(QueueStatus.ERROR.value, 0) else QueueStatus.STOPPED
    started = ended + sum(count(s.value, 0) for s in RUNNING_QUEUE_STATUSES)
    return QueueStatus.LOADING if started else QueueStatus.PENDING


def settle(queue: QueueState, now: datetime, out: Outcome) -> Outcome:
    """Recompute what derives from the steps. A terminal queue never changes status again."""
    if not out.changed:
        return out
    if not queue.status.terminal:
        _set_status(queue, derive_status(queue), now, out)
    for event in out.events:
        if event.kind is EventKind.STEP_STATUS and event.message is None and event.to in _ENDED:
            event.message = queue.steps[event.step or 0].error_message
    loaders = [s for s in queue.steps if s.target is Target.LOADER] or queue.steps
    queue.records_written = max(queue.records_written, sum(s.records_written for s in loaders))
    stamps = [s.last_loaded_timestamp for s in queue.steps if s.last_loaded_timestamp]
    if stamps and (
        queue.last_loaded_timestamp is None or max(stamps) > queue.last_loaded_timestamp
    ):
        queue.last_loaded_timestamp = max(stamps)
    starts = [s.started_at for s in queue.steps if s.started_at]
    if queue.started_at is None and starts:
        queue.started_at = min(starts)
    if queue.status.terminal and queue.finished_at is None:
        queue.finished_at = now
    queue.updated_at = now
    return out


_ENDED = frozenset({StepStatus.ERROR, StepStatus.STOPPED, StepStatus.SKIPPED})


def _set_status(queue: QueueState, status: QueueStatus, now: datetime, out: Outcome) -> None:
    if status is queue.status:
        return
    message = queue.error_message if status is QueueStatus.ERROR else None
    if status is QueueStatus.STOPPED and queue.stopped_by:
        message = f"stopped by {queue.stopped_by}"
    out.record(EventKind.QUEUE_STATUS, now, from_=queue.status, to=status, message=message)
    queue.status = status
