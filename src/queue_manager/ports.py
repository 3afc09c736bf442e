"""The boundary to every external system (docs/operations.md). Services depend on these, never on
adapters.

Every adapter raises `DependencyUnavailable` when its system cannot be reached, and only that:
third-party errors are wrapped at the adapter boundary.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

from queue_manager.domain.catalog import CollectionEntry, CollectionInfo
from queue_manager.domain.coverage import Cell, CellRun, ExpectedGap
from queue_manager.domain.history import QueueEvent
from queue_manager.domain.identity import ApiToken, Principal
from queue_manager.domain.models import QueueState, QueueStatus
from queue_manager.domain.overview import RunStats
from queue_manager.domain.rate_limits import Breaker
from queue_manager.domain.schedules import Schedule, ScheduleRun
from queue_manager.domain.telemetry import Source

# -- time -------------------------------------------------------------------------------------


class Clock(Protocol):
    """The one time of the process. Every service and the API read it instead of the system's,
    and the domain is handed what it reads (`now` arguments), so a test moves time by moving a
    clock rather than by backdating stored rows. Replicas must agree on it: production's is the
    system clock (adapters/system_clock.py)."""

    def now(self) -> datetime:
        """Aware, UTC."""
        ...

    async def sleep_until(self, when: datetime) -> None:
        """Return once `now()` has reached `when` (at once when it has). What waits for a time
        of this clock (a schedule's next tick, a stop deadline) waits here, so that a faster or
        hand-moved clock wakes it too."""
        ...


# -- state store ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    items: list[QueueState]
    next_cursor: str | None


class StateStore(Protocol):
    name: str

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...

    async def insert(
        self, queue: QueueState, idempotency_key: str | None, events: Sequence[QueueEvent] = ()
    ) -> tuple[QueueState, bool]:
        """Store a new queue with its first history events. With a key already used, return
        that queue and False instead (writing nothing)."""
        ...

    async def get(self, queue_id: str) -> QueueState | None: ...

    async def update_many(
        self, changes: Mapping[str, Callable[[QueueState], list[QueueEvent] | None]]
    ) -> dict[str, QueueState | None]:
        """Apply each `mutate` to the freshest copy of its queue atomically (retrying on a
        concurrent write), as cheaply as the store allows (one transaction for SQLite).

        `mutate` returns None when it changed nothing (nothing is written), else the history
        events of its change (numbered already; maybe none), written in the same transaction
        as the queue. Returns each queue as stored afterwards, or None when it does not exist.
        """
        ...

    async def admit(
        self, limit: int | None, admit: Callable[[QueueState], list[QueueEvent]]
    ) -> list[QueueState]:
        """Admit `queued` queues, highest `priority` first then oldest, while fewer than `limit`
        queues run (pending, loading, stopping; None: no limit) and passing over a backfill's
        child while `max_parallel` children of its parent run: `admit` changes each and returns
        its events. Decided and written atomically, so replicas admitting at once never exceed
        a limit. A backfill's parent is not a running queue: it runs no job itself."""
        ...

    async def update_parent(
        self,
        parent_id: str,
        mutate: Callable[[QueueState, list[QueueState]], list[QueueEvent] | None],
    ) -> QueueState | None:
        """`update_many` for a backfill's parent, with `mutate` also given its children as they
        are in the same transaction, so the last recount always sees the last change."""
        ...

    async def claim(
        self,
        queue_id: str,
        targets: Collection[str],
        mutate: Callable[[QueueState, Mapping[str, int]], list[QueueEvent] | None],
    ) -> QueueState | None:
        """`update_many` for one queue, with `mutate` also given how many steps of each of
        `targets` run now (launching, started, loading) in all queues — counted and written
        atomically, so replicas claiming at once never exceed a limit."""
        ...

    async def queued_order(self) -> list[str]:
        """The ids of the `queued` queues in the order they will be admitted."""
        ...

    async def events(self, queue_id: str, *, after: int, limit: int) -> list[QueueEvent]:
        """The queue's history events with `seq` > `after`, oldest first."""
        ...

    async def get_json(self, queue_id: str) -> bytes | None:
        """The queue as JSON, exactly `QueueState.model_dump_json()`, without decoding it."""
        ...

    async def page(
        self,
        *,
        status: QueueStatus | None,
        symbol: str | None,
        limit: int,
        cursor: str | None,
        parent: str | None = None,
        id_prefix: str | None = None,
        top_level: bool = False,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> Page:
        """Newest first; with `parent`, only that backfill's children; with `id_prefix`, only
        the queues whose id starts with it; `top_level`: no backfill's child; `created_from`
        (inclusive) and `created_to` (exclusive): only queues created in that range."""
        ...

    async def delete_ended(self, before: datetime, limit: int) -> list[str]:
        """Delete up to `limit` queues that ended (finished, stopped, error) before `before`,
        oldest first, with their history and idempotency keys; returns their ids."""
        ...

    async def list_active(self) -> list[QueueState]:
        """Every queue not yet terminal (queued, pending, loading, stopping)."""
        ...

    async def count_by_status(self) -> dict[str, int]: ...


# -- schedules --------------------------------------------------------------------------------


class ScheduleStore(Protocol):
    """Schedules and the decision taken for each of their ticks, beside the queues."""

    async def put_schedule(self, schedule: Schedule) -> bool:
        """Store a new schedule; False (nothing written) when the name is taken."""
        ...

    async def get_schedule(self, name: str) -> Schedule | None: ...
    async def list_schedules(self) -> list[Schedule]: ...
    async def update_schedule(
        self, name: str, mutate: Callable[[Schedule], None]
    ) -> Schedule | None:
        """Apply `mutate` to the freshest copy atomically; None when there is no such one."""
        ...

    async def delete_schedule(self, name: str) -> bool:
        """Delete it and the record of its ticks (its queues stay)."""
        ...

    async def claim_tick(
        self, run: ScheduleRun, queues: Sequence[tuple[QueueState, Sequence[QueueEvent]]]
    ) -> bool:
        """Record what became of a tick and insert its queues, in one transaction; False (and
        nothing written) when that tick of that schedule was already decided, by anyone."""
        ...

    async def last_ticks(self) -> dict[str, datetime]:
        """Per schedule, its latest decided tick."""
        ...

    async def schedule_runs(
        self, name: str, *, before: datetime | None, limit: int
    ) -> list[ScheduleRun]:
        """Its decided ticks, newest first, older than `before`."""
        ...

    async def active_runs(self, name: str) -> list[QueueState]:
        """Its queues that have not ended."""
        ...


# -- rate-limit groups -------------------------------------------------------------------------


class RateLimitStore(Protocol):
    """The rate-limit groups' breakers (docs/operations.md "Rate-limit groups"), beside the
    queues so that every replica holds the same groups."""

    async def breakers(self) -> list[Breaker]:
        """Every breaker stored, open or closed, by group name."""
        ...

    async def trip_breaker(
        self, group: str, change: Callable[[Breaker | None], Breaker | None]
    ) -> tuple[Breaker | None, Breaker | None]:
        """Apply `change` to the group's breaker as stored now (None: there is none) and store
        what it returns (None: leave it as it is), compare-and-set: replicas tripping at once
        write one after the other, each `change` seeing the write before it. Returns (before,
        after): the breaker the stored write replaced, and the one stored afterwards."""
        ...


# -- the overview ------------------------------------------------------------------------------


class StatsStore(Protocol):
    """Counts over a window of queues for the overview (docs/api.md "GET /stats/overview"):
    grouped in the store over the queues created since then, never read one by one."""

    async def run_stats(self, since: datetime) -> RunStats:
        """Of the queues created at or after `since` (a backfill's parent excluded): runs by
        creation hour and status, and the finished/failed tallies by step target and by
        symbol (domain/overview.py says what counts)."""
        ...


# -- the catalog of collections ----------------------------------------------------------------


class CatalogStore(Protocol):
    """The collections steps wrote, their producers and consumers (docs/pipelines.md "The
    catalog"). Written by `update_many`, in the transaction of the change that ended a
    producing or consuming step (domain/catalog.py says which)."""

    async def collections(
        self, prefix: str | None, *, after: str | None, limit: int
    ) -> list[CollectionEntry]:
        """By name, those starting with `prefix`, after the name `after`."""
        ...

    async def collection(self, name: str, *, consumers: int) -> CollectionInfo | None:
        """One collection with its latest `consumers`, newest first."""
        ...

    async def known_collections(self, names: Collection[str]) -> set[str]:
        """Which of `names` the catalog holds."""
        ...

    async def collection_names(self, limit: int) -> list[str]:
        """Up to `limit` names, by name (what a refused input's suggestions are taken from)."""
        ...


# -- the coverage ledger ------------------------------------------------------------------------


class CoverageStore(Protocol):
    """The coverage ledger (docs/coverage.md): cells (symbol, type, UTC day) written by the
    store in the transaction of every queue write that changes them (domain/coverage.py says
    which), and the expected-gap calendar set over the API."""

    async def coverage_cells(
        self, symbols: Sequence[str], types: Sequence[str], first: date, last: date
    ) -> list[Cell]:
        """The stored cells of those symbols and types, days first..last, by type, symbol, day."""
        ...

    async def coverage_runs(
        self, symbols: Sequence[str], types: Sequence[str], first: date, last: date
    ) -> list[CellRun]:
        """The runs of the stored cells of those symbols and types that have days in
        first..last, clipped to them (a run crossing `first` or `last` holds the records, first
        and last instants of its days inside): what domain.coverage.cell_runs makes of the
        cells days first..last; by type, symbol, start."""
        ...

    async def coverage_settled(
        self, symbols: Sequence[str], types: Sequence[str], first: date, last: date
    ) -> list[tuple[str, str, date, date]]:
        """(symbol, type, first day, last day): the runs of days complete or running, which a
        fill never runs again."""
        ...

    async def coverage_symbols(self, type_: str, limit: int) -> list[str]:
        """Up to `limit` symbols with cells of `type_`, by name."""
        ...

    async def coverage_counts(self) -> dict[tuple[str, str], int]:
        """Cells by (type, state)."""
        ...

    async def derive_coverage(self, after: str | None, limit: int) -> str | None:
        """Write the cells of up to `limit` stored queues (by id, after `after`) that the ledger
        does not hold yet, in one transaction; the last id read, None when none was left."""
        ...

    async def coverage_derived(self) -> bool:
        """Whether the ledger was derived from the stored queues (the upgrade, once)."""
        ...

    async def mark_coverage_derived(self) -> None: ...

    async def expected_gaps(self) -> list[ExpectedGap]: ...

    async def put_expected_gap(self, gap: ExpectedGap) -> bool:
        """Stores (or replaces) a gap by name; True when it is new."""
        ...

    async def delete_expected_gap(self, name: str) -> bool: ...


# -- command / telemetry bus ------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    queue_id: str
    command: str  # a job_contract.CommandName
    command_id: str
    sent_at: str
    payload: dict[str, Any] = field(default_factory=dict)

    def as_message(self) -> dict[str, Any]:
        return {
            "queue_id": self.queue_id,
            "command": self.command,
            "payload": self.payload,
            "command_id": self.command_id,
            "sent_at": self.sent_at,
        }


class Message(NamedTuple):
    source: Source
    value: bytes


class Batch(Protocol):
    #: the message values by source, in bus order: values, not a `Message` each, since a
    #: fetch brings tens of thousands
    parts: Sequence[tuple[Source, Sequence[bytes]]]

    async def commit(self) -> None:
        """Acknowledge the whole batch; call only after its effects are stored."""
        ...


class Bus(Protocol):
    name: str

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def ping(self) -> None: ...
    async def send_command(self, command: Command) -> None: ...
    async def send_telemetry(self, value: bytes) -> None:
        """Publish worker telemetry received another way (HTTP in embedded mode)."""
        ...

    def batches(self) -> AsyncIterator[Batch]:
        """Telemetry from `queue-events` and `queue-control`, in batches, until stopped."""
        ...

    async def send_updates(self, value: bytes) -> None:
        """Publish live updates (a JSON array) for every replica's WebSocket clients, in order."""
        ...

    def updates(self) -> AsyncIterator[bytes]:
        """Every array of updates any replica sent from now on (each replica sees all)."""
        ...


class DataTopics(Protocol):
    """The workers' data topics (docs/pipelines.md): where a connector's consumer group starts
    reading, and how far behind it is. Raises DependencyUnavailable when the bus is down."""

    async def position_group(self, topic: str, group: str, *, at_end: bool) -> None:
        """Give `group` a committed offset on every partition of `topic`, creating the topic
        (DATA_TOPIC_PARTITIONS partitions) when it does not exist. `at_end`: commit the current
        end of every partition (records already there are from an earlier run and are skipped);
        otherwise commit the beginning, and only on partitions where the group has no offset
        (or one outside the partition's records: expired, or left by a deleted topic)."""
        ...

    async def group_lag(self, topic: str, group: str) -> int | None:
        """Records of `topic` the group has not committed yet, summed over partitions (a
        partition without a committed offset counts from its beginning); None when unknown
        (the in-process bus has no data topics)."""
        ...


# -- job launcher -----------------------------------------------------------------------------


class JobPhase(StrEnum):
    ACTIVE = "active"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    GONE = "gone"


@dataclass(frozen=True)
class JobSpec:
    name: str
    queue_id: str
    step_index: int
    target: str
    image: str | None
    env: dict[str, str]
    #: env name -> (secret name, key): credentials never appear as literal values
    secret_env: dict[str, tuple[str, str]]
    max_retries: int
    #: the step's `timeout` in seconds (None: none): the launcher ends the job after it and
    #: reports it failed with `error_class` `timeout` (Kubernetes: `activeDeadlineSeconds`)
    timeout: float | None = None


@dataclass(frozen=True)
class JobStatus:
    name: str
    queue_id: str
    step_index: int
    phase: JobPhase
    attempts: int = 1
    message: str | None = None
    #: an ended job's last word, when its worker left one (the local launcher: its exit file):
    #: how it ended (`finished`, `error`, `interrupted`) and the records it wrote in all. It
    #: stands in for a final report lost, e.g. in an outage of the service longer than the
    #: worker's delivery deadline.
    outcome: str | None = None
    records_written: int | None = None
    #: the launcher's word on why (an `ErrorClass` value; docs/operations.md "Error classes"):
    #: on a FAILED job `infrastructure` (OOMKilled, Evicted, node lost, killed by a signal),
    #: `configuration` (image pull error, bad config: the job can never run), `timeout` (ran
    #: past its `timeout`); on an ACTIVE job `pending`, `message` then saying why it has not
    #: started (unschedulable: the scheduler's message). None: nothing known
    error_class: str | None = None


class Launcher(Protocol):
    name: str

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def ping(self) -> None: ...
    async def launch(self, spec: JobSpec) -> None:
        """Create the job; creating one that already exists is a success (retries are safe)."""
        ...

    async def delete(self, name: str) -> None:
        """Remove the job and its processes/pods; deleting a missing job is a success."""
        ...

    async def list_jobs(self) -> list[JobStatus]:
        """Every job this service manages, as the launcher sees it now."""
        ...

    def logs(self, name: str, *, tail: int | None, follow: bool) -> AsyncIterator[bytes]:
        """The job's output: the last `tail` lines (all when None), then, with `follow`, what it
        writes until it ends. Raises `LogsUnavailable` saying why there is none."""
        ...

    def watch(self) -> AsyncIterator[JobStatus]:
        """Changes of job status, until stopped."""
        ...


# -- metrics ----------------------------------------------------------------------------------


class ServiceMetrics(Protocol):
    """What the services count (docs/operations.md names the families)."""

    def queue_started(self) -> None: ...
    def job_launched(self, target: str, result: str) -> None:
        """`result`: ok, refused (never retried) or error (retried by the reconciler)."""
        ...

    def telemetry_applied(self, source: str, status: str, count: int) -> None: ...
    def telemetry_rejected(self, reason: str, count: int) -> None: ...
    def telemetry_lag(self, seconds: float) -> None:
        """Now minus the event's `sent_at` when it was applied."""
        ...

    def queue_admitted(self, waited_seconds: float) -> None:
        """A queued queue was admitted after waiting that long."""
        ...

    def queues_pruned(self, count: int) -> None:
        """Ended queues deleted by retention."""
        ...

    def backfill_child(self, status: str) -> None:
        """A backfill's child queue reached `status`."""
        ...

    def step_warning(self, target: str) -> None:
        """A worker reported a recoverable error (`error` with `finished: false`)."""
        ...

    def step_retried(self, target: str, error_class: str) -> None:
        """A step's attempt failed with `error_class` and its retry policy retries it."""
        ...

    def connector_drained(self) -> None:
        """A connector drained its topic and ended `finished`."""
        ...

    def connectors_lag(self, records: int) -> None:
        """What the draining connectors have yet to consume, summed, at the last look."""
        ...

    def finished_job_ended(self, target: str) -> None:
        """A job still running after its step reported `finished` was deleted."""
        ...

    def step_stalled(self, target: str) -> None:
        """A step was declared stalled (silent past `stall_after`, no `pong` within
        `ping_timeout`) and its job deleted."""
        ...

    def rate_limit_open(self, group: str, is_open: bool) -> None:
        """A rate-limit group's breaker is open (or closed) as last seen."""
        ...


# -- live updates -----------------------------------------------------------------------------


class Broadcaster(Protocol):
    def publish(self, update: dict[str, Any]) -> None:
        """Hand an update to every subscriber without ever waiting for one."""
        ...


# -- identity ---------------------------------------------------------------------------------


class TokenStore(Protocol):
    """API tokens, kept beside the queues so every replica sees the same set."""

    async def put_token(self, token: ApiToken) -> bool:
        """Store a new token; False (and nothing written) when the name is taken."""
        ...

    async def token_by_hash(self, sha256: str) -> ApiToken | None: ...
    async def list_tokens(self) -> list[ApiToken]: ...
    async def delete_token(self, name: str) -> bool:
        """Revoke: True when a token of that name existed."""
        ...

    async def touch_token(self, name: str, at: datetime) -> None:
        """Record a use (callers throttle this; it is for `token list`, not for security)."""
        ...


class SessionStore(Protocol):
    """Browser sessions that were logged out, kept beside the tokens so every replica (and a
    restarted one) refuses them. A session id is no credential: the cookie is signed."""

    async def end_session(self, session_id: str, until: datetime, now: datetime) -> None:
        """Record a logout, idempotently. `until` is when the session would have ended by
        itself: records whose `until` is not after `now` may go (such cookies are refused by
        their age alone)."""
        ...

    async def ended_sessions(self, now: datetime) -> set[str]:
        """The ids of the logged-out sessions that would still be valid at `now`."""
        ...


class BearerVerifier(Protocol):
    """Turns a bearer credential issued elsewhere (an OIDC JWT) into a principal."""

    async def verify(self, token: str) -> Principal:
        """Raise `Unauthenticated` naming why the token is refused."""
        ...

    async def close(self) -> None: ...


class Store(
    StateStore,
    TokenStore,
    SessionStore,
    ScheduleStore,
    RateLimitStore,
    StatsStore,
    CatalogStore,
    CoverageStore,
    Protocol,
):
    """What a store adapter implements: the queues, the API tokens (and logged-out sessions),
    the schedules and the rate-limit breakers, in one database."""
