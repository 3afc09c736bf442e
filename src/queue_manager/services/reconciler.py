"""Keeps the store and the launcher in agreement (docs/operations.md), on start-up and periodically.

Both directions: a step whose job failed or vanished fails (or ends `stopped` when its queue is
stopping), a job that no queue knows is deleted, stop deadlines that passed are enforced, and
pending steps whose producers are ready are launched — so a restart loses nothing.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import structlog

from queue_manager.domain.errors import DependencyUnavailable
from queue_manager.domain.models import StepStatus
from queue_manager.domain.planner import ready_steps
from queue_manager.ports import Clock, Launcher, StateStore
from queue_manager.services.engine import RECONCILER, Engine
from queue_manager.services.job_events import JobEvents
from queue_manager.services.stop_deadlines import StopDeadlines

log = structlog.get_logger(__name__)


class Reconciler:
    def __init__(
        self,
        engine: Engine,
        job_events: JobEvents,
        deadlines: StopDeadlines,
        *,
        store: StateStore,
        launcher: Launcher,
        clock: Clock,
        launch_grace: timedelta,
        period: float,
    ) -> None:
        """`launch_grace`: how long a step may stay `launching` without its job appearing
        before it is launched again (LAUNCH_GRACE_SECONDS); `period`: seconds between passes."""
        self.engine = engine
        self.job_events = job_events
        self.deadlines = deadlines
        self.store = store
        self.launcher = launcher
        self.clock = clock
        self.launch_grace = launch_grace
        self.period = period

    async def run(self) -> None:
        began: float | None = time.monotonic()  # until the first pass has gone through
        while True:
            try:
                jobs, queues = await self.reconcile()
            except DependencyUnavailable as exc:
                log.warning("reconcile postponed", reason=exc.detail)
            else:
                if began is not None:
                    # Operators (and P8) want to know when a restart has caught up: until then a
                    # step whose job is gone may still show as running.
                    log.info(
                        "start-up reconcile done",
                        jobs=jobs,
                        queues=queues,
                        seconds=round(time.monotonic() - began, 3),
                    )
                    began = None
            await asyncio.sleep(self.period)

    async def watch(self) -> None:
        async for job in self.launcher.watch():
            try:
                await self.job_events.on_job(job)
            except DependencyUnavailable as exc:
                log.warning(
                    "job event postponed to the next reconcile", job=job.name, reason=exc.detail
                )

    async def reconcile(self) -> tuple[int, int]:
        """One pass; how many jobs the launcher listed and how many queues were active."""
        # Slots freed where no replica noticed (a crash between a queue's end and its admit).
        await self.engine.admit()
        snapshot_at = self.clock.now()
        jobs = {job.name: job for job in await self.launcher.list_jobs()}
        # One read of the active queues serves both passes (a read per job was most of a pass's
        # cost with a thousand running); what the job pass changed is read again.
        active = {queue.id: queue for queue in await self.store.list_active()}
        changed = [
            job.queue_id
            for job in jobs.values()
            if await self.job_events.on_job(job, RECONCILER, active.get(job.queue_id))
        ]
        at = self.clock.now()
        gone = [
            (queue, step.index)
            for queue in active.values()
            for step in queue.steps
            if step.status.running
            and step.status is not StepStatus.LAUNCHING
            and step.job_name not in jobs
            and not self.engine.launching(queue.id, step.index)
            # launched after the job list was taken
            and not (step.launched_at is not None and step.launched_at >= snapshot_at)
        ]
        changed += await self.job_events.on_gone(gone, RECONCILER)
        # What the two passes changed is read again: no launch of a step of a queue they ended.
        for queue_id in dict.fromkeys(changed):
            fresh = await self.store.get(queue_id)
            if fresh is None or fresh.status.terminal:
                active.pop(queue_id, None)
            else:
                active[queue_id] = fresh
        for queue in active.values():
            for step in queue.steps:
                if (
                    step.status is not StepStatus.LAUNCHING
                    or step.job_name in jobs
                    or self.engine.launching(queue.id, step.index)
                ):
                    continue
                launched = step.launched_at or queue.updated_at
                if at - launched > self.launch_grace:
                    log.info(
                        "relaunching a step whose job never appeared",
                        queue_id=queue.id,
                        step=step.index,
                    )
                    await self.engine.launch(queue, [step.index])
            if queue.stop_deadline is not None and queue.stop_deadline <= at:
                await self.deadlines.reap(queue.id)
            elif ready_steps(queue):
                await self.engine.advance(queue.id)
        return len(jobs), len(active)
