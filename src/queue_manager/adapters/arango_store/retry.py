"""The one retry loop of the ArangoDB store.

Replicas write the same documents, and ArangoDB settles it by refusing the later writer: a
replace whose `_rev` moved on (HTTP 412), or a write-write conflict with a transaction not yet
committed (error 1200). Either way nothing of the attempt is kept, and running it again on fresh
data is the answer. So every write of the store is an *attempt* run here: on contention it is
run again after a short random wait (jittered, capped, so replicas that collided spread out),
at most `max_attempts` times, then the store reports itself unavailable rather than wait on.

Which errors mean contention is decided here, once: 1200 and a stale revision anywhere; any
other error an attempt meets is the attempt's to judge — it raises `Contended` itself where
another writer explains it (an idempotency key or a lock document inserted concurrently,
error 1210) and lets everything else through.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Final, TypeVar

from arangoasync.exceptions import ArangoServerError, DocumentRevisionError
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from queue_manager.adapters.arango_store.errors import ERR_CONFLICT, server_codes
from queue_manager.domain.errors import DependencyUnavailable

T = TypeVar("T")

#: the first wait is up to 2 ms, doubling to at most 100 ms
_FIRST_WAIT: Final = 0.002
_LONGEST_WAIT: Final = 0.1


class Contended(Exception):
    """Another writer got there first: abandon this attempt and run it again."""


def contended(exc: BaseException) -> bool:
    """Whether a driver error means another writer got there first."""
    return isinstance(exc, DocumentRevisionError) or server_codes(exc)[1] == ERR_CONFLICT


class Retry:
    def __init__(
        self, guard: Callable[[str], AbstractAsyncContextManager[None]], max_attempts: int
    ) -> None:
        self._guard = guard
        self.max_attempts = max_attempts

    async def __call__(self, action: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run `attempt` until it is not contended; driver errors leave as the store's
        `DependencyUnavailable` naming `action`."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_random_exponential(multiplier=_FIRST_WAIT, max=_LONGEST_WAIT),
            retry=retry_if_exception_type(Contended),
        )
        try:
            return await retrying(self._once, action, attempt)
        except RetryError:
            raise DependencyUnavailable(
                "store", f"{action} still contended after {self.max_attempts} attempts"
            ) from None

    async def _once(self, action: str, attempt: Callable[[], Awaitable[T]]) -> T:
        async with self._guard(action):
            try:
                return await attempt()
            except ArangoServerError as exc:
                if contended(exc):
                    raise Contended(str(exc)) from exc
                raise
