"""Following the Jobs: list, then watch from the list's resourceVersion; on 410 Gone, an error,
or a watch that stays silent, list again (reporting what changed meanwhile, vanished Jobs as
GONE) and resume. Each status is reported once per change, not once per event."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx2
import structlog
from lightkube import AsyncClient
from lightkube.resources.batch_v1 import Job
from lightkube.types import OnErrorAction, OnErrorResult

from queue_manager.adapters.kube.errors import status_code, unavailable
from queue_manager.adapters.kube.manifests import SELECTOR, gone, job_status
from queue_manager.domain.errors import DependencyUnavailable
from queue_manager.ports import JobPhase, JobStatus

log = structlog.get_logger(__name__)

#: the Jobs now, and the resourceVersion to watch from
Listing = tuple[list[JobStatus], str | None]


class Expired(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


class Silent(Exception):
    """No event for too long: the watch may be stuck, list again."""


def _raise_on_error(exc: Exception, count: int) -> OnErrorResult:
    return OnErrorResult(OnErrorAction.RAISE)


def backoff(failures: int, retry_max: float) -> float:
    return float(min(retry_max, 0.5 * 2 ** min(failures, 10)) * random.uniform(0.8, 1))


async def job_events(
    client: AsyncClient, namespace: str, version: str | None, server_timeout: int, silence: float
) -> AsyncIterator[tuple[str, JobStatus]]:
    """Events after `version` until the watch expires (`Expired`), stays silent (`Silent`) or
    fails (`DependencyUnavailable`). Lightkube reconnects by itself, from the last seen
    resourceVersion, when the server ends a watch after `server_timeout`."""
    stream = client.watch(
        Job,
        namespace=namespace,
        labels=SELECTOR,
        resource_version=version,
        server_timeout=server_timeout,
        on_error=_raise_on_error,
    )
    events = stream.__aiter__()
    try:
        while True:
            try:
                kind, job = await asyncio.wait_for(events.__anext__(), silence)
            except StopAsyncIteration:
                return
            except TimeoutError as exc:
                raise Silent from exc
            except httpx2.HTTPError as exc:  # ApiError included
                if status_code(exc) == 410:
                    raise Expired from exc
                raise unavailable("watch jobs", exc) from exc
            if kind not in ("ADDED", "MODIFIED", "DELETED"):
                continue  # BOOKMARK
            status = job_status(job)
            if status is not None:
                yield kind, status
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            # Closing the stream of a watch that already failed may fail the same way.
            with contextlib.suppress(httpx2.HTTPError, OSError):
                await aclose()


async def follow(
    list_jobs: Callable[[], Awaitable[Listing]],
    events: Callable[[str | None], AsyncIterator[tuple[str, JobStatus]]],
    *,
    silence: float,
    retry_max: float,
) -> AsyncIterator[JobStatus]:
    """Every change of our Jobs' statuses, forever; the cluster being unreachable only delays
    them (retried with a capped, jittered backoff)."""
    known: dict[str, JobStatus] = {}
    failures = 0
    while True:
        try:
            statuses, version = await list_jobs()
        except DependencyUnavailable as exc:
            failures += 1
            delay = backoff(failures, retry_max)
            log.warning("job list failed, retrying", reason=exc.detail, retry_in=delay)
            await asyncio.sleep(delay)
            continue
        current = {s.name: s for s in statuses}
        for name, old in list(known.items()):
            if name not in current:
                del known[name]
                yield gone(old)
        for name, status in current.items():
            if known.get(name) != status:
                known[name] = status
                yield status
        try:
            async for kind, status in events(version):
                if kind == "DELETED":
                    last = known.pop(status.name, None)
                    if status.phase is not JobPhase.ACTIVE and last != status:
                        yield status  # how it ended, if that was missed
                    yield gone(last or status)
                elif known.get(status.name) != status:
                    known[status.name] = status
                    yield status
                failures = 0
        except Expired:
            log.info("job watch expired (410), re-listing")
        except Silent:
            log.info("job watch silent, re-listing", silence=silence)
        except DependencyUnavailable as exc:
            failures += 1
            delay = backoff(failures, retry_max)
            log.warning("job watch failed, re-listing", reason=exc.detail, retry_in=delay)
            await asyncio.sleep(delay)
