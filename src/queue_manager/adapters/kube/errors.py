"""What the API server's answers and the transport's errors mean to the services."""

from __future__ import annotations

import httpx2
from lightkube import ApiError

from queue_manager.domain.errors import DependencyUnavailable

DEPENDENCY = "launcher"

#: API answers that mean "this manifest will never be accepted": the step fails.
REFUSED = frozenset({400, 403, 422})


def status_code(exc: httpx2.HTTPError) -> int | None:
    if isinstance(exc, ApiError) and exc.status is not None:
        code = exc.status.code
        return int(code) if code is not None else None
    if isinstance(exc, httpx2.HTTPStatusError):
        return exc.response.status_code
    return None


def unavailable(action: str, exc: httpx2.HTTPError) -> DependencyUnavailable:
    """The error the services retry later: the cluster did not do `action`, for now."""
    if isinstance(exc, ApiError) and exc.status is not None:
        detail = f"{action}: {exc.status.code} {exc.status.reason or ''} {exc.status.message or ''}"
    else:
        detail = f"{action}: {type(exc).__name__}: {exc}"
    return DependencyUnavailable(DEPENDENCY, " ".join(detail.split()))
