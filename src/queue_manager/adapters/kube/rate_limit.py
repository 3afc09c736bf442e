"""Client-side QPS/burst limit: a burst of launches never floods the API server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx2


class TokenBucket:
    """`burst` requests at once, then `qps` per second.

    A token is taken at the moment a request really goes, never reserved ahead: a caller that
    wakes late (a busy event loop) finds the bucket as time refilled it, so no window of any
    length ever carries more than `burst + qps * length` requests. Callers queue on a lock,
    which asyncio hands over first come, first served. `qps <= 0` disables the limit.
    """

    def __init__(
        self, qps: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.qps = float(qps)
        self.burst = max(int(burst), 1)
        self._clock = clock
        self._tokens = float(self.burst)
        self._last = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now

    async def acquire(self) -> None:
        if self.qps <= 0:
            return
        self._refill()
        if self._tokens >= 1.0 and not self._lock.locked():
            self._tokens -= 1.0  # the common case: no wait, no lock
            return
        async with self._lock:
            while True:
                self._refill()
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self._tokens) / self.qps)


class RateLimitedTransport(httpx2.AsyncBaseTransport):
    """Every request the client sends (create, list, delete, each watch connection...) waits
    for a token first: the limit cannot be bypassed by a code path that forgot it."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, bucket: TokenBucket) -> None:
        self._inner = inner
        self._bucket = bucket

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        await self._bucket.acquire()
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()
