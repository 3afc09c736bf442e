"""What the probes and /metrics ask of the service (docs/api.md, docs/operations.md): whether
each dependency answers, and how many queues each status holds."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from queue_manager.domain.errors import DependencyUnavailable
from queue_manager.ports import Bus, Launcher, StateStore

PING_TIMEOUT = 2.0


@dataclass(frozen=True)
class Check:
    backend: str
    ok: bool
    detail: str | None = None


class Health:
    def __init__(
        self, store: StateStore, bus: Bus, launcher: Launcher, *, timeout: float = PING_TIMEOUT
    ) -> None:
        self._store = store
        self._bus = bus
        self._launcher = launcher
        self._timeout = timeout

    async def readiness(self) -> dict[str, Check]:
        """store, bus and launcher, pinged side by side; a slow answer counts as none."""
        store, bus, launcher = await asyncio.gather(
            self._check(self._store.name, self._store.ping),
            self._check(self._bus.name, self._bus.ping),
            self._check(self._launcher.name, self._launcher.ping),
        )
        return {"store": store, "bus": bus, "launcher": launcher}

    async def queue_counts(self) -> dict[str, int]:
        """Stored queues by status; raises DependencyUnavailable or TimeoutError."""
        return await asyncio.wait_for(self._store.count_by_status(), self._timeout)

    async def _check(self, backend: str, ping: Callable[[], Awaitable[None]]) -> Check:
        try:
            await asyncio.wait_for(ping(), self._timeout)
        except DependencyUnavailable as exc:
            return Check(backend, False, exc.detail)
        except TimeoutError:
            return Check(backend, False, f"no answer in {self._timeout:g} s")
        return Check(backend, True)
