"""What no event announces (docs/pipelines.md, docs/worker-protocol.md), looked at every
STEP_WATCH_SECONDS on every replica (each change is an idempotent store update):

- a terminal report held for the reorder window is applied once the window has passed;
- a connector whose producers all finished is drained once its consumer group has consumed to
  the end of its topic and neither its lag nor its records moved for the quiet period: its step
  ends `finished` and its job is deleted, since the platform's connector never ends by itself.

The quiet period is timed in memory: a replica that restarts, or another one, times it again
from its own first look, which only delays the drain.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from queue_manager.domain import naming, state
from queue_manager.domain.errors import DependencyUnavailable
from queue_manager.domain.models import QueueState, Step, StepStatus, Target
from queue_manager.domain.planner import ready_steps
from queue_manager.domain.state import Outcome
from queue_manager.ports import Clock, DataTopics, ServiceMetrics, StateStore
from queue_manager.services.engine import RECONCILER, Engine

log = structlog.get_logger(__name__)


class StepWatch:
    def __init__(
        self,
        engine: Engine,
        *,
        store: StateStore,
        metrics: ServiceMetrics,
        clock: Clock,
        topics: DataTopics | None,
        period: float,
        window: float,
        quiet: float,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        """`topics`: the workers' data topics, None when there are none (no connector is
        drained then); `monotonic`: seconds for the quiet period (default: the event loop's),
        a duration on this replica only, which a change of the wall clock must not shorten."""
        self.engine = engine
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.topics = topics
        self._monotonic = monotonic
        self.period = period
        self.window = window
        self.quiet = quiet
        #: (queue id, step index) -> (monotonic time lag 0 was first seen, records then)
        self._quiet_since: dict[tuple[str, int], tuple[float, int]] = {}

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except DependencyUnavailable as exc:
                log.warning("step watch postponed", reason=exc.detail)
            await asyncio.sleep(self.period)

    async def tick(self) -> None:
        queues = await self.store.list_active()
        await self.release_held(queues)
        if self.topics is not None:
            await self.drain(queues, self.topics)

    async def release_held(self, queues: list[QueueState]) -> None:
        at = self.clock.now()
        due = [
            queue.id
            for queue in queues
            if (held := state.pending_release(queue)) is not None
            and (at - held).total_seconds() >= self.window
        ]
        if not due:
            return

        def release(queue: QueueState) -> Outcome:
            return state.release_endings(queue, self.clock.now(), self.window)

        results = await self.engine.apply_many(dict.fromkeys(due, release), actor="telemetry")
        for queue_id, (queue, outcome) in results.items():
            if queue is not None and outcome.transitioned and ready_steps(queue):
                await self.engine.advance(queue_id)

    async def drain(self, queues: list[QueueState], topics: DataTopics) -> None:
        clock = (self._monotonic or asyncio.get_running_loop().time)()
        looked: set[tuple[str, int]] = set()
        behind = 0
        for queue in queues:
            for step in queue.steps:
                if not _draining(queue, step) or step.kafka_topic is None:
                    continue
                key = (queue.id, step.index)
                lag = await topics.group_lag(step.kafka_topic, naming.connector_group(queue.id))
                if lag is None:
                    continue
                looked.add(key)
                behind += lag
                if lag > 0:
                    self._quiet_since.pop(key, None)
                    continue
                mark = self._quiet_since.get(key)
                if mark is None or mark[1] != step.records_written:
                    mark = self._quiet_since[key] = (clock, step.records_written)
                if clock - mark[0] < self.quiet:
                    continue
                detail = (
                    f"its producers finished and group {naming.connector_group(queue.id)} "
                    f"consumed to the end of {step.kafka_topic}; quiet for {self.quiet:g} s "
                    f"at {step.records_written} records"
                )
                await self.drained(queue.id, step.index, detail)
                looked.discard(key)
        for key in set(self._quiet_since) - looked:
            del self._quiet_since[key]
        self.metrics.connectors_lag(behind)

    async def drained(self, queue_id: str, index: int, detail: str) -> bool:
        """A connector drained its topic: its step ends `finished`, its job goes (the
        platform's connector never ends by itself), and its dependents launch."""
        stored, outcome = await self.engine.apply(
            queue_id,
            lambda q: state.drained(q, index, detail, self.clock.now()),
            actor=RECONCILER,
        )
        if stored is None or not outcome.changed:
            return False
        step = stored.steps[index]
        self.metrics.connector_drained()
        log.info("connector drained", queue_id=queue_id, step=index, detail=detail)
        await self.engine.delete_job(step.job_name, queue_id, index)
        await self.engine.advance(queue_id)
        return True


def _draining(queue: QueueState, step: Step) -> bool:
    """A running connector of a queue not being stopped, whose loaders have all finished."""
    if step.target is not Target.CONNECTOR or not step.status.running:
        return False
    if queue.stop_requested_at is not None or queue.status.terminal:
        return False
    producers = [s for s in queue.steps if s.target is Target.LOADER and s.type == step.type]
    return bool(producers) and all(s.status is StepStatus.FINISHED for s in producers)
