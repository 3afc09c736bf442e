"""Follow a launcher's `watch()` in the background and wait for a job to reach a phase."""

from __future__ import annotations

import asyncio
import contextlib

from queue_manager.ports import JobPhase, JobStatus, Launcher
from tests.support.waiting import wait_until_async


class Watcher:
    """Runs a launcher's `watch()` in a task and keeps what it yields."""

    def __init__(self, launcher: Launcher) -> None:
        self.launcher = launcher
        self.seen: list[JobStatus] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Watcher:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        async for status in self.launcher.watch():
            self.seen.append(status)
            self._changed.set()

    async def wait_for(self, name: str, phase: JobPhase, within: float = 15.0) -> JobStatus:
        """The latest status of `name` in `phase`, once the watch has yielded one."""

        def reached() -> JobStatus | None:
            for status in reversed(self.seen):
                if status.name == name and status.phase is phase:
                    return status
            return None

        return await wait_until_async(
            reached,
            within,
            what=f"{name} to be {phase}",
            wake=self._changed,
            every=1.0,
            detail=lambda: f"seen: {self.seen}",
        )
