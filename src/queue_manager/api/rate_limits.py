"""Rate-limit groups (docs/api.md "GET /rate-limits"; docs/operations.md "Rate-limit groups"):
each group, whether its breaker is open, until when and why."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import ConfigDict

from queue_manager.api.auth import require
from queue_manager.api.container import Container, get_container
from queue_manager.api.envelope import Envelope, error_responses, success
from queue_manager.domain.identity import Principal, Role
from queue_manager.services.rate_limits import GroupState

router = APIRouter(tags=["rate limits"])

Services = Annotated[Container, Depends(get_container)]
Reader = Annotated[Principal, Depends(require(Role.VIEWER, "read rate limits"))]

_EXAMPLE: dict[str, Any] = {
    "group": "exchange",
    "open": True,
    "until": "2026-12-01T02:00:07Z",
    "reason": "HTTP 429 Too Many Requests (retry after 7 s)",
    "patterns": [
        "loader-producer:api_*",
        "loader-producer:rest_*",
        "loader-producer:api",
        "loader-producer:rest",
    ],
    "opened_at": "2026-12-01T02:00:00Z",
    "strikes": 1,
    "queue_id": "btcusdt-api_candles_1m-2026-11-30-ab12cd34",
}


class RateLimitGroup(GroupState):
    model_config = ConfigDict(frozen=True, json_schema_extra={"examples": [_EXAMPLE]})


@router.get(
    "/rate-limits",
    response_model=Envelope[list[RateLimitGroup]],
    summary="Each rate-limit group: whether its steps are held, until when and why",
    responses=error_responses(401, 403, 503),
)
async def rate_limits(_: Reader, services: Services) -> Response:
    states = await services.rate_limits.states()
    shown = [state.model_dump(mode="json") for state in states]
    return success("Rate limits", shown)
