"""A Job's output, read from its newest pod through the API server (`pods/log: get`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
from lightkube import ApiError, AsyncClient
from lightkube.resources.core_v1 import Pod

from queue_manager.adapters.kube.errors import unavailable
from queue_manager.domain.errors import LogsUnavailable

#: set by the Job controller on every pod it creates
JOB_NAME_LABEL = "job-name"


async def pod_logs(
    client: AsyncClient, namespace: str, job: str, *, tail: int | None, follow: bool
) -> AsyncIterator[bytes]:
    try:
        listing = client.list(Pod, namespace=namespace, labels={JOB_NAME_LABEL: job})
        pods = [p async for p in listing]
    except httpx2.HTTPError as exc:
        raise unavailable(f"list the pods of job {job}", exc) from exc
    if not pods:
        raise LogsUnavailable(f"job {job} has no pod: not scheduled yet, or deleted with its job")
    newest = max(pods, key=lambda p: str(p.metadata.creationTimestamp if p.metadata else ""))
    name = newest.metadata.name if newest.metadata else None
    assert name is not None
    if newest.spec is None or not newest.spec.nodeName:
        raise LogsUnavailable(f"pod {name} of job {job} has no log to serve: not on a node yet")
    try:
        async for line in client.log(name, namespace=namespace, follow=follow, tail_lines=tail):
            yield line.encode()
    except ApiError as exc:
        # The API server answers 400 for a pod no kubelet runs yet (or ever, in tests).
        reason = exc.status.message if exc.status is not None else str(exc)
        raise LogsUnavailable(f"pod {name} of job {job} has no log to serve: {reason}") from None
    except httpx2.HTTPError as exc:
        raise unavailable(f"read the log of pod {name}", exc) from exc
