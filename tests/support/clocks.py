"""Clocks for tests (the Clock port, src/queue_manager/ports.py): time a test moves instead of
backdating stored rows, and time that runs faster so a per-minute schedule ticks in seconds.

The app takes one through its factory (`create_app(clock=...)`), never through a setting: in
this process directly, and in a service subprocess through `fast_app`, the factory a test names
as `Service(app=FAST_APP, env=clock.env())`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI

#: `Service(app=FAST_APP, env=clock.env())`: a service subprocess on a FastClock
FAST_APP = "tests.support.clocks:fast_app"
#: how `fast_app` learns its clock from the test that starts the subprocess (tests only: the
#: service itself reads neither)
SCALE_ENV = "TEST_CLOCK_SCALE"
ORIGIN_ENV = "TEST_CLOCK_ORIGIN"


class ManualClock:
    """Stands still until the test moves it. Safe to move from another thread than the one
    whose event loop sleeps on it (an app served on a thread, tests/support/app_server.py)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)
        self._lock = threading.Lock()
        self._sleepers: list[tuple[datetime, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def __call__(self) -> datetime:
        return self.now()

    def advance(self, delta: timedelta) -> datetime:
        """Move on by `delta`, waking what slept until then; the new time."""
        with self._lock:
            self._now += delta
            now = self._now
            due = [s for s in self._sleepers if s[0] <= now]
            self._sleepers = [s for s in self._sleepers if s[0] > now]
        for _, loop, future in due:
            with contextlib.suppress(RuntimeError):  # its loop has closed: nobody waits
                loop.call_soon_threadsafe(_wake, future)
        return now

    async def sleep_until(self, when: datetime) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        sleeper = (when, loop, future)
        with self._lock:
            if when <= self._now:
                return
            self._sleepers.append(sleeper)
        try:
            await future
        finally:
            with self._lock, contextlib.suppress(ValueError):
                self._sleepers.remove(sleeper)

    @property
    def sleepers(self) -> int:
        """How many sleep until a time still to come."""
        with self._lock:
            return len(self._sleepers)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class FastClock:
    """Real time running `scale` times faster from `origin`: replicas given the same pair keep
    the same time."""

    def __init__(self, scale: float, origin: datetime) -> None:
        self.scale = scale
        self.origin = origin

    def now(self) -> datetime:
        return self.at(datetime.now(UTC))

    def at(self, real: datetime) -> datetime:
        """What this clock read (or will read) at real time `real`."""
        return self.origin + (real - self.origin) * self.scale

    async def sleep_until(self, when: datetime) -> None:
        left = (when - self.now()).total_seconds()
        while left > 0:
            await asyncio.sleep(left / self.scale)
            left = (when - self.now()).total_seconds()

    def env(self) -> dict[str, str]:
        """What `fast_app` in a subprocess needs to run this very clock."""
        return {SCALE_ENV: repr(self.scale), ORIGIN_ENV: self.origin.isoformat()}


def fast_app() -> FastAPI:
    """`create_app` on the FastClock that the environment names (`FastClock.env`): the app
    factory a service subprocess is started with when a test needs its time to run faster."""
    from queue_manager.app import create_app

    clock = FastClock(float(os.environ[SCALE_ENV]), datetime.fromisoformat(os.environ[ORIGIN_ENV]))
    return create_app(clock=clock)
