"""A step's log, from whichever launcher ran its job (docs/api.md): as written, or read line by
line (`domain/log_lines.py`) to filter it by level and text or send it parsed."""

from __future__ import annotations

from collections.abc import AsyncIterator

from queue_manager.domain import log_lines
from queue_manager.domain.errors import LogsUnavailable, QueueNotFound
from queue_manager.domain.log_lines import LogLevel
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


async def split_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[str]:
    """Whole lines out of a byte stream cut anywhere (a character may straddle two chunks);
    the last line is given even without its newline."""
    pending = b""
    async for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode("utf-8", errors="replace")
    if pending:
        yield pending.decode("utf-8", errors="replace")


async def filtered(
    chunks: AsyncIterator[bytes],
    *,
    minimum: LogLevel | None,
    grep: str | None,
    as_json: bool,
) -> AsyncIterator[bytes]:
    """The lines `log_lines.wanted` keeps: as written, or parsed as one JSON object a line."""
    async for raw in split_lines(chunks):
        line = log_lines.parse(raw)
        if not log_lines.wanted(line, minimum, grep):
            continue
        if as_json:
            yield line.model_dump_json().encode() + b"\n"
        else:
            yield line.raw.encode() + b"\n"
