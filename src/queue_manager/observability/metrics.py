"""Prometheus families of docs/operations.md, on a registry of the app's own (no global state at
import)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from queue_manager.domain.models import QueueStatus


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.queues_started = Counter("queue_manager_queues_started", "Queues started.", registry=r)
        self.queues = Gauge(
            "queue_manager_queues", "Stored queues by status.", ["status"], registry=r
        )
        self.jobs_launched = Counter(
            "queue_manager_jobs_launched", "Jobs launched.", ["target", "result"], registry=r
        )
        self.telemetry_events = Counter(
            "queue_manager_telemetry_events", "Telemetry applied.", ["source", "status"], registry=r
        )
        self.telemetry_rejected_total = Counter(
            "queue_manager_telemetry_rejected", "Telemetry skipped.", ["reason"], registry=r
        )
        self.telemetry_lag_seconds = Histogram(
            "queue_manager_telemetry_lag_seconds",
            "Now minus the event's sent_at when applied.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.admission_wait_seconds = Histogram(
            "queue_manager_admission_wait_seconds",
            "How long queues waited in status queued before admission.",
            buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14400, 86400),
            registry=r,
        )
        self.queues_pruned_total = Counter(
            "queue_manager_queues_pruned", "Ended queues deleted by retention.", registry=r
        )
        self.schedule_runs_total = Counter(
            "queue_manager_schedule_runs",
            "Schedule ticks decided, by outcome: started, skipped (Forbid, invalid template) or "
            "missed (catch-up policy, starting deadline).",
            ["outcome"],
            registry=r,
        )
        self.backfill_children_total = Counter(
            "queue_manager_backfill_children",
            "Backfill child queues reaching each status.",
            ["status"],
            registry=r,
        )
        self.step_warnings_total = Counter(
            "queue_manager_step_warnings",
            "Recoverable errors workers reported (`error` with `finished: false`); the step "
            "went on.",
            ["target"],
            registry=r,
        )
        self.connectors_drained_total = Counter(
            "queue_manager_connectors_drained",
            "Connectors ended `finished` because their producers finished and their consumer "
            "group consumed to the end of the topic.",
            registry=r,
        )
        self.connector_lag = Gauge(
            "queue_manager_connector_lag_records",
            "Records the draining connectors (producers finished) have yet to consume, summed.",
            registry=r,
        )
        self.finished_jobs_ended_total = Counter(
            "queue_manager_finished_jobs_ended",
            "Jobs deleted because they still ran FINISHED_JOB_GRACE_SECONDS after their step "
            "reported `finished`.",
            ["target"],
            registry=r,
        )
        self.steps_stalled_total = Counter(
            "queue_manager_steps_stalled",
            "Steps declared stalled: no report for `stall_after` and no `pong` within "
            "`ping_timeout`; their jobs were deleted.",
            ["target"],
            registry=r,
        )
        self.rate_limit_open_groups = Gauge(
            "queue_manager_rate_limit_open",
            "1 while the rate-limit group's breaker is open (its steps do not launch), else 0.",
            ["group"],
            registry=r,
        )
        self.retries_total = Counter(
            "queue_manager_retries",
            "Failed attempts a step's retry policy retries, by the failure's error class.",
            ["target", "class"],
            registry=r,
        )
        self.coverage_cells = Gauge(
            "queue_manager_coverage_cells",
            "Cells of the coverage ledger (symbol x data type x day) by state and data type; "
            "refreshed every COVERAGE_METRICS_SECONDS.",
            ["state", "type"],
            registry=r,
        )
        #: the (type, state) pairs the gauge was ever set for
        self._coverage_seen: set[tuple[str, str]] = set()
        self.websocket_clients = Gauge(
            "queue_manager_websocket_clients", "Connected WebSocket clients.", registry=r
        )
        self.websocket_conflated = Counter(
            "queue_manager_websocket_updates_conflated",
            "Updates a WebSocket client never got because a newer one of the same key replaced "
            "them before it was sent (summed over clients).",
            registry=r,
        )
        self.websocket_dropped = Counter(
            "queue_manager_websocket_disconnected",
            "WebSocket clients the server closed: idle (read nothing for WS_IDLE_SECONDS) or "
            "behind (more than WS_CLIENT_BUFFER keys pending).",
            ["reason"],
            registry=r,
        )
        self.http_requests = Counter(
            "queue_manager_http_requests", "HTTP requests.", ["method", "route", "code"], registry=r
        )
        self.http_latency = Histogram(
            "queue_manager_http_request_duration_seconds",
            "HTTP request latency.",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )

    # ports.ServiceMetrics: what the services count.

    def queue_started(self) -> None:
        self.queues_started.inc()

    def job_launched(self, target: str, result: str) -> None:
        self.jobs_launched.labels(target=target, result=result).inc()

    def telemetry_applied(self, source: str, status: str, count: int) -> None:
        self.telemetry_events.labels(source=source, status=status).inc(count)

    def telemetry_rejected(self, reason: str, count: int) -> None:
        self.telemetry_rejected_total.labels(reason=reason).inc(count)

    def telemetry_lag(self, seconds: float) -> None:
        self.telemetry_lag_seconds.observe(seconds)

    def queue_admitted(self, waited_seconds: float) -> None:
        self.admission_wait_seconds.observe(waited_seconds)

    def queues_pruned(self, count: int) -> None:
        self.queues_pruned_total.inc(count)

    def schedule_run(self, outcome: str) -> None:
        self.schedule_runs_total.labels(outcome=outcome).inc()

    def backfill_child(self, status: str) -> None:
        self.backfill_children_total.labels(status=status).inc()

    def step_warning(self, target: str) -> None:
        self.step_warnings_total.labels(target=target).inc()

    def step_retried(self, target: str, error_class: str) -> None:
        self.retries_total.labels(target=target, **{"class": error_class}).inc()

    def connector_drained(self) -> None:
        self.connectors_drained_total.inc()

    def connectors_lag(self, records: int) -> None:
        self.connector_lag.set(records)

    def finished_job_ended(self, target: str) -> None:
        self.finished_jobs_ended_total.labels(target=target).inc()

    def step_stalled(self, target: str) -> None:
        self.steps_stalled_total.labels(target=target).inc()

    def rate_limit_open(self, group: str, is_open: bool) -> None:
        self.rate_limit_open_groups.labels(group=group).set(1 if is_open else 0)

    def set_coverage_counts(self, counts: dict[tuple[str, str], int]) -> None:
        """(type, state) -> cells; a pair no longer counted goes back to 0."""
        for type_, state in self._coverage_seen - counts.keys():
            self.coverage_cells.labels(state, type_).set(0)
        for (type_, state), n in counts.items():
            self.coverage_cells.labels(state, type_).set(n)
        self._coverage_seen |= counts.keys()

    def set_queue_counts(self, counts: dict[str, int]) -> None:
        for status in QueueStatus:
            self.queues.labels(status=status.value).set(counts.get(status.value, 0))

    def render(self) -> bytes:
        return generate_latest(self.registry)
