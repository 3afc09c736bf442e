"""Stop deadlines (docs/api.md, graceful stop): once a stopping queue's grace period has passed,
whatever of it still runs is deleted and every open step ends `stopped`.

The replica that took the stop waits for the deadline with a task of its own, dropped as soon
as it has fired: a stop leaves nothing behind in the process. The reconciler reaps every
deadline that passed too, so one lost with the process (or taken on another replica) costs
only a reconcile period.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

import structlog

from queue_manager.domain import state
from queue_manager.domain.errors import DependencyUnavailable
from queue_manager.domain.models import QueueState
from queue_manager.domain.state import Outcome
from queue_manager.ports import Clock, StateStore
from queue_manager.services.engine import RECONCILER, Engine

log = structlog.get_logger(__name__)


class StopDeadlines:
    def __init__(self, engine: Engine, *, store: StateStore, clock: Clock) -> None:
        self.engine = engine
        self.store = store
        self.clock = clock
        #: the deadlines waited for now; each task leaves this set when done
        self._waiting: set[asyncio.Task[None]] = set()

    @property
    def waiting(self) -> int:
        """How many deadlines this replica waits for now."""
        return len(self._waiting)

    def watch(self, queue_id: str, deadline: datetime) -> None:
        """Reap the queue once `deadline` has passed on the clock."""
        task = asyncio.get_running_loop().create_task(self._reap_at(queue_id, deadline))
        self._waiting.add(task)
        task.add_done_callback(self._waiting.discard)

    async def _reap_at(self, queue_id: str, deadline: datetime) -> None:
        await self.clock.sleep_until(deadline)
        try:
            await self.reap(queue_id)
        except DependencyUnavailable as exc:
            log.warning("stop deadline reap postponed", queue_id=queue_id, reason=exc.detail)

    async def reap(self, queue_id: str) -> None:
        """After the grace period: delete what still runs, every open step ends `stopped`."""
        queue = await self.store.get(queue_id)
        if queue is None or queue.stop_deadline is None or queue.status.terminal:
            return
        if queue.stop_deadline > self.clock.now():
            return
        open_steps = [s.index for s in queue.steps if not s.status.terminal]
        for index in open_steps:
            await self.engine.delete_job(queue.steps[index].job_name, queue_id, index)

        def stop_all(q: QueueState) -> Outcome:
            at = self.clock.now()
            outcome = Outcome()
            for index in open_steps:
                outcome.merge(state.stop_step(q, index, "stopped after the grace period", at))
            return outcome

        await self.engine.apply(queue_id, stop_all, actor=RECONCILER)
        log.info("queue stopped", queue_id=queue_id, deleted_jobs=len(open_steps))

    async def close(self) -> None:
        for task in list(self._waiting):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
