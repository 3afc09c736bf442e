"""GET /queues/{queue_id}/steps/{index}/logs: a step's output as plain text."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import StreamingResponse

from queue_manager.api.auth import require
from queue_manager.api.container import Container, get_container
from queue_manager.api.envelope import error_responses
from queue_manager.api.queues import QueueIdPath
from queue_manager.domain.identity import Principal, Role

router = APIRouter(prefix="/queues", tags=["queues"])
Services = Annotated[Container, Depends(get_container)]
Reader = Annotated[Principal, Depends(require(Role.VIEWER, "read logs"))]


@router.get(
    "/{queue_id}/steps/{index}/logs",
    summary="A step's log: the last lines, or followed until the step ends",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/plain": {"example": "step started\nloaded 100 records\n"}}},
        **error_responses(401, 403, 404, 503),
    },
)
async def step_logs(
    _: Reader,
    services: Services,
    queue_id: QueueIdPath,
    index: Annotated[int, Path(ge=0, le=63)],
    tail: Annotated[int | None, Query(ge=0, le=100_000, description="The last N lines")] = None,
    follow: Annotated[bool, Query(description="Keep streaming until the step ends")] = False,
) -> StreamingResponse:
    stream = await services.logs.open(queue_id, index, tail=tail, follow=follow)
    return StreamingResponse(stream, media_type="text/plain; charset=utf-8")
