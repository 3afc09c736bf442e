"""Background loops (dispatcher, job watcher, reconciler) run as supervised tasks.

A loop that crashes is logged and restarted with a backoff; one that returns is logged; all are
cancelled cleanly at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


class Supervisor:
    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        self._tasks[name] = asyncio.create_task(self._run(name, loop), name=name)

    async def _run(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        delay = 0.5
        while True:
            try:
                await loop()
                log.info("background loop ended", loop=name)
                return
            except asyncio.CancelledError:
                log.info("background loop cancelled", loop=name)
                raise
            except Exception as exc:
                log.error(
                    "background loop crashed, restarting", loop=name, retry_in=delay, exc_info=exc
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def stop(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
