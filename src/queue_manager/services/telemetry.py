"""The dispatcher: applies worker telemetry from the bus, at least once and idempotently.

A batch is grouped by queue so each queue is written once per batch (coalescing progress while
keeping every status transition: the domain applies the events in order inside one update).
Offsets are committed only after the writes; if the store is down the same batch is retried.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import datetime

import structlog

from queue_manager.domain import state
from queue_manager.domain.errors import DependencyUnavailable
from queue_manager.domain.models import QueueState
from queue_manager.domain.planner import ready_steps
from queue_manager.domain.state import Outcome
from queue_manager.domain.telemetry import Ignored, Rejected, Source, TelemetryEvent, parse
from queue_manager.ports import Batch, Bus, Clock, ServiceMetrics
from queue_manager.services.engine import Engine

log = structlog.get_logger(__name__)

RETRY_MAX_SECONDS = 5.0


class Dispatcher:
    def __init__(
        self,
        engine: Engine,
        *,
        bus: Bus,
        metrics: ServiceMetrics,
        clock: Clock,
        reorder_window: float = 0.0,
    ) -> None:
        """`reorder_window`: how long a terminal report waits for earlier-sent ones (Kafka
        delivers unkeyed reports out of order; the in-process bus never does)."""
        self.engine = engine
        self.bus = bus
        self.metrics = metrics
        self.clock = clock
        self.reorder_window = reorder_window

    async def run(self) -> None:
        async for batch in self.bus.batches():
            delay = 0.1
            while True:
                try:
                    await self.handle(batch)
                    await batch.commit()
                    break
                except DependencyUnavailable as exc:
                    log.warning("telemetry batch postponed", reason=exc.detail, retry_in=delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX_SECONDS)

    async def handle(self, batch: Batch) -> None:
        by_queue: dict[str, list[TelemetryEvent]] = defaultdict(list)
        by_source: dict[Source, list[TelemetryEvent]] = defaultdict(list)
        rejected: list[Rejected] = []
        received = self.clock.now()
        for source, values in batch.parts:
            applied = by_source[source]
            for value in values:
                try:
                    event = parse(value, source)
                except Ignored:
                    continue
                except Rejected as exc:
                    rejected.append(exc)
                    continue
                by_queue[event.queue_id].append(event)
                applied.append(event)
        if by_queue:
            await self.apply_events(by_queue, received)
        # Counted once applied: a batch retried after a store outage is not counted twice.
        for rejection in rejected:
            self.reject(rejection.reason, rejection.detail)
        for source, events in by_source.items():
            for status, count in Counter(e.status for e in events).items():
                self.metrics.telemetry_applied(source.value, status.value, count)
        for events in by_queue.values():
            # Each queue's first report in the batch (its oldest by offset): the lag that
            # matters, at a cost per queue rather than per report.
            sent = events[0].sent_at
            if sent is not None:
                self.metrics.telemetry_lag(max((received - sent).total_seconds(), 0.0))

    async def apply_events(self, by_queue: dict[str, list[TelemetryEvent]], at: datetime) -> None:
        """One store write for the whole batch; each queue gets its events in order."""
        unknown: dict[str, list[TelemetryEvent]] = {}

        def change_for(queue_id: str) -> Callable[[QueueState], Outcome]:
            def change(queue: QueueState) -> Outcome:
                outcome, unknown[queue_id] = state.apply_telemetry_batch(
                    queue, by_queue[queue_id], at, self.reorder_window
                )
                return outcome

            return change

        results = await self.engine.apply_many(
            {q: change_for(q) for q in by_queue}, actor="telemetry"
        )
        for queue_id, (queue, outcome) in results.items():
            if queue is None:
                self.reject("unknown_queue", queue_id, count=len(by_queue[queue_id]))
                continue
            for event in unknown.get(queue_id, []):
                self.reject("unknown_step", f"{queue_id} producer={event.producer}")
            # Most transitions (a worker starting, loading) make no step ready: skipping those
            # saves a write transaction per queue when a batch starts a thousand of them.
            if outcome.transitioned and ready_steps(queue):
                await self.engine.advance(queue_id)

    def reject(self, reason: str, detail: str, count: int = 1) -> None:
        self.metrics.telemetry_rejected(reason, count)
        log.warning("telemetry rejected", reason=reason, detail=detail[:300])
