"""A step's log, from whichever launcher ran its job (docs/api.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from queue_manager.domain.errors import LogsUnavailable, QueueNotFound
from queue_manager.domain.models import StepStatus
from queue_manager.ports import Launcher, StateStore


class StepLogs:
    def __init__(self, store: StateStore, launcher: Launcher) -> None:
        self.store = store
        self.launcher = launcher

    async def open(
        self, queue_id: str, index: int, *, tail: int | None, follow: bool
    ) -> AsyncIterator[bytes]:
        """The log stream with its first chunk already read, so that a step without a log is
        answered as an error before any byte of a 200 is sent."""
        queue = await self.store.get(queue_id)
        if queue is None:
            raise QueueNotFound(queue_id)
        if not 0 <= index < len(queue.steps):
            raise LogsUnavailable(
                f"Queue {queue_id} has no step {index} (steps 0..{len(queue.steps) - 1})",
                data={"queue_id": queue_id, "step": index},
            )
        step = queue.steps[index]
        if step.status is StepStatus.PENDING or (step.launched_at is None and step.attempts == 0):
            raise LogsUnavailable(
                f"step {index} ({step.target.value}) has not started: no log yet",
                data={"queue_id": queue_id, "step": index},
            )
        stream = aiter(self.launcher.logs(step.job_name, tail=tail, follow=follow))
        first = await anext(stream, b"")

        async def rest() -> AsyncIterator[bytes]:
            if first:
                yield first
            async for chunk in stream:
                yield chunk

        return rest()
