"""What no event announces (docs/pipelines.md, docs/worker-protocol.md), looked at every
STEP_WATCH_SECONDS on every replica (each change is an idempotent store update):

- a terminal report held for the reorder window is applied once the window has passed;
- a step `retrying` whose `retry_at` has come is relaunched (docs/pipelines.md "Retry");
- a connector whose producers all finished is drained once its consumer group has consumed to
  the end of its topic and neither its lag nor its records moved for the quiet period: its step
  ends `finished` and its job is deleted, since the platform's connector never ends by itself;
- a running step silent past its `stall_after` is sent `ping`; unanswered within its
  `ping_timeout`, it fails as `stalled` and its job is deleted (domain/stalls.py).

The quiet period is timed in memory: a replica that restarts, or another one, times it again
from its own first look, which only delays the drain.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import structlog

from queue_manager.domain import naming, stalls, state
from queue_manager.domain.errors import DependencyUnavailable
from queue_manager.domain.models import QueueState, Step, StepStatus, Target
from queue_manager.domain.planner import ready_steps
from queue_manager.domain.stalls import Verdict
from queue_manager.domain.state import Outcome
from queue_manager.job_contract import CommandName
from queue_manager.ports import Clock, Command, DataTopics, ServiceMetrics, StateStore
from queue_manager.services.engine import RECONCILER, Engine

log = structlog.get_logger(__name__)


#: a pass may take at most this share of the time between two passes
BUSY_SHARE = 0.2


def pause(period: float, took: float) -> float:
    """How long the watch waits after a pass that took `took` seconds: its period, or longer
    when a pass is slow. Each pass reads and decodes every active queue (a second for 10,000
    of them): waiting four times as long keeps the watch under a fifth of a CPU, leaving the
    rest to telemetry and the reconciler."""
    return max(period, took * (1 - BUSY_SHARE) / BUSY_SHARE)


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
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            try:
                await self.tick()
            except DependencyUnavailable as exc:
                log.warning("step watch postponed", reason=exc.detail)
            await asyncio.sleep(pause(self.period, loop.time() - began))

    async def tick(self) -> None:
        queues = await self.store.list_active()
        await self.release_held(queues)
        await self.relaunch_due(queues)
        await self.watch_stalls(queues)
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

    async def watch_stalls(self, queues: list[QueueState]) -> None:
        """Ping the running steps silent past their `stall_after`; fail as `stalled` those
        that answered no ping within `ping_timeout` and delete their jobs (domain/stalls.py)."""
        at = self.clock.now()
        for queue in queues:
            for step in queue.steps:
                found = stalls.verdict(queue, step, at)
                if found is Verdict.PING:
                    await self.ping(queue.id, step.index)
                elif found is Verdict.STALLED:
                    await self.stalled(queue.id, step.index)

    async def ping(self, queue_id: str, index: int) -> None:
        stored, outcome = await self.engine.apply(
            queue_id, lambda q: stalls.ping_sent(q, index, self.clock.now()), actor=RECONCILER
        )
        if stored is None or not outcome.changed:
            return
        # Kafka workers hear it on queue-control; HTTP workers are told when they poll
        # (services/workers.py) while the ping is unanswered.
        command = Command(
            queue_id=queue_id,
            command=CommandName.PING,
            command_id=str(uuid.uuid4()),
            sent_at=self.clock.now().isoformat(),
            payload={"producer": stored.steps[index].telemetry_id},
        )
        await self.engine.bus.send_command(command)
        log.info("silent step pinged", queue_id=queue_id, step=index, command_id=command.command_id)

    async def stalled(self, queue_id: str, index: int) -> bool:
        stored, outcome = await self.engine.apply(
            queue_id, lambda q: stalls.stalled(q, index, self.clock.now()), actor=RECONCILER
        )
        if stored is None or not outcome.changed:
            return False
        step = stored.steps[index]
        self.metrics.step_stalled(step.target.value)
        log.warning("step stalled", queue_id=queue_id, step=index, reason=step.error_message)
        await self.engine.delete_job(step.job_name, queue_id, index)
        await self.engine.advance(queue_id)
        return True

    async def relaunch_due(self, queues: list[QueueState]) -> None:
        """Steps `retrying` whose `retry_at` has come go back to `pending` and launch by the
        usual path (which an open rate-limit group or MAX_RUNNING_JOBS may still hold). The
        wait is stored: a restarted replica, or another one, relaunches it at its time; the
        compare-and-set of the store lets one of them do it, once."""
        at = self.clock.now()
        due = [
            queue.id
            for queue in queues
            if (when := state.next_retry(queue)) is not None and when <= at
        ]
        if not due:
            return

        def relaunch(queue: QueueState) -> Outcome:
            return state.relaunch_due(queue, self.clock.now())

        results = await self.engine.apply_many(dict.fromkeys(due, relaunch), actor=RECONCILER)
        for queue_id, (queue, outcome) in results.items():
            if queue is not None and outcome.transitioned:
                log.info(
                    "retrying steps relaunched",
                    queue_id=queue_id,
                    steps=sorted(outcome.steps),
                )
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
