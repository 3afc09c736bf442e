"""Queue and step state as stored (docs/api.md). Field names are fixed by the platform."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from queue_manager.domain.retry import Attempt, ErrorClass, RetryPolicy
from queue_manager.domain.spans import ReportedCoverage

# Re-exported: the domain names targets the way the job contract does.
from queue_manager.job_contract import Target as Target


def utcnow() -> datetime:
    return datetime.now(UTC)


class StepStatus(StrEnum):
    PENDING = "pending"
    LAUNCHING = "launching"
    STARTED = "started"
    LOADING = "loading"
    FINISHED = "finished"
    ERROR = "error"
    STOPPED = "stopped"
    SKIPPED = "skipped"
    #: failed, and waits for `retry_at` to run again (its retry policy, docs/pipelines.md)
    RETRYING = "retrying"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL_STEP

    @property
    def running(self) -> bool:
        return self in _RUNNING_STEP

    @property
    def rank(self) -> int:
        """Progress order: a step only ever moves to a higher rank."""
        return _STEP_RANK[self]


_TERMINAL_STEP = frozenset(
    {StepStatus.FINISHED, StepStatus.ERROR, StepStatus.STOPPED, StepStatus.SKIPPED}
)
_RUNNING_STEP = frozenset({StepStatus.LAUNCHING, StepStatus.STARTED, StepStatus.LOADING})
_STEP_RANK = {
    StepStatus.PENDING: 0,
    # Waits like a pending step: only a relaunch (back to pending) or an end moves it.
    StepStatus.RETRYING: 0,
    StepStatus.LAUNCHING: 1,
    StepStatus.STARTED: 2,
    StepStatus.LOADING: 3,
    StepStatus.FINISHED: 4,
    StepStatus.ERROR: 4,
    StepStatus.STOPPED: 4,
    StepStatus.SKIPPED: 4,
}


class QueueStatus(StrEnum):
    #: waiting for admission (MAX_RUNNING_QUEUES): nothing of it runs yet
    QUEUED = "queued"
    PENDING = "pending"
    LOADING = "loading"
    FINISHED = "finished"
    STOPPING = "stopping"
    STOPPED = "stopped"
    ERROR = "error"

    @property
    def terminal(self) -> bool:
        return self in (QueueStatus.FINISHED, QueueStatus.STOPPED, QueueStatus.ERROR)


#: admitted and not ended: what MAX_RUNNING_QUEUES counts
RUNNING_QUEUE_STATUSES = (QueueStatus.PENDING, QueueStatus.LOADING, QueueStatus.STOPPING)
ACTIVE_QUEUE_STATUSES = (QueueStatus.QUEUED, *RUNNING_QUEUE_STATUSES)


class LoaderType(StrEnum):
    JOB = "job"
    STREAM = "stream"
    CONNECTOR = "connector"


class Ending(BaseModel):
    """A terminal report held for the reorder window (docs/worker-protocol.md): the platform's
    workers send unkeyed reports, so a later-sent one can arrive first. Of the terminal reports
    a worker sent, the earliest-sent wins, whatever order they arrived in."""

    status: StepStatus
    message: str | None = None
    sent_at: datetime | None = None
    received_at: datetime
    #: of an `error`: its class and the exchange's Retry-After (docs/operations.md)
    error_class: ErrorClass | None = None
    retry_after: float | None = None


class Step(BaseModel):
    model_config = ConfigDict(validate_assignment=False)

    index: int
    target: Target
    type: str
    params: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[int] = Field(default_factory=list)
    status: StepStatus = StepStatus.PENDING
    job_name: str
    telemetry_id: str
    kafka_topic: str | None = None
    collection_name: str | None = None
    records_written: int = 0
    last_loaded_timestamp: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error_message: str | None = None
    attempts: int = 0
    max_retries: int = 0
    image: str | None = None
    launched_at: datetime | None = None
    #: 0 for the first run; each retry of the queue that re-runs this step adds one
    run: int = 0
    #: why a step that could launch waits (its target is at its MAX_RUNNING_JOBS limit)
    waiting: str | None = None
    #: recoverable errors the worker reported (`error` with `finished: false`); it went on
    warnings: int = 0
    last_warning: str | None = None
    last_warning_at: datetime | None = None
    #: `sent_at` of the latest warnings counted, so a redelivered one is not counted twice
    warning_stamps: list[datetime] = Field(default_factory=list)
    #: a terminal report received and not yet applied (TELEMETRY_REORDER_SECONDS)
    ending: Ending | None = None
    #: runs that heal themselves (docs/pipelines.md "Retry"): the policy, and the limits of a run
    retry: RetryPolicy | None = None
    timeout: float | None = None
    pending_timeout: float | None = None
    stall_after: float | None = None
    ping_timeout: float | None = None
    #: while `retrying`: when the next attempt starts
    retry_at: datetime | None = None
    #: the class of its latest failed attempt (None: none failed)
    error_class: ErrorClass | None = None
    #: retries its policy made since the queue was started (or last retried by hand)
    retries: int = 0
    #: one entry per attempt (launch), the latest last
    attempts_log: list[Attempt] = Field(default_factory=list)
    #: stall detection (`stall_after`, docs/operations.md "Timeouts"): when its worker was last
    #: heard from (kept only for a step with `stall_after`), and when it was sent a `ping` no
    #: `pong` (nor any report) has answered yet
    last_seen: datetime | None = None
    pinged_at: datetime | None = None
    #: the exact coverage its worker reported (docs/coverage.md): wins over the ledger's rule
    coverage: ReportedCoverage | None = None


class Backfill(BaseModel):
    chunk: str
    max_parallel: int
    symbols: list[str]
    children: int = 0
    #: children by status (every status present, zeros included)
    progress: dict[str, int] = Field(default_factory=dict)


class QueueState(BaseModel):
    id: str
    symbol: str
    type: str
    status: QueueStatus = QueueStatus.PENDING
    loader_type: LoaderType
    time_range: str
    start_time: datetime
    end_time: datetime
    last_loaded_timestamp: datetime | None = None
    records_written: int = 0
    error_message: str | None = None
    kafka_topic: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    stop_requested_at: datetime | None = None
    stop_deadline: datetime | None = None
    #: who started it and who asked it to stop (`token:ci`, `oidc:alice`, `anonymous`)
    created_by: str | None = None
    stopped_by: str | None = None
    #: how often the queue was retried, and the queue this one was resubmitted from
    retries: int = 0
    resubmitted_from: str | None = None
    #: the start request as accepted, so the queue can be resubmitted
    request: dict[str, Any] | None = None
    #: admission order: higher first, then oldest first
    priority: int = 0
    #: set while the queue waits for admission (status `queued`)
    queued_at: datetime | None = None
    #: the `seq` of its latest history event (`GET /queues/{id}/events`)
    event_seq: int = 0
    #: a schedule's run: the schedule and the tick it was started for
    schedule: str | None = None
    scheduled_for: datetime | None = None
    #: a backfill's child: the parent queue, and how many of its children may run at once
    parent: str | None = None
    max_parallel: int | None = None
    #: a backfill's parent: what it was asked and how its children stand (it has no steps)
    backfill: Backfill | None = None
    steps: list[Step] = Field(default_factory=list)

    def step_by_producer(self, producer: str) -> Step | None:
        for step in self.steps:
            if step.telemetry_id == producer:
                return step
        return None
