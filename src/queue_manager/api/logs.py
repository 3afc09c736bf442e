"""GET /queues/{queue_id}/steps/{index}/logs: a step's output, as written or parsed (one JSON
object a line), filtered by level and text, to read, follow or download."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import StreamingResponse

from queue_manager.api.auth import require
from queue_manager.api.container import Container, get_container
from queue_manager.api.envelope import error_responses
from queue_manager.api.examples import LOG_GREP_EXAMPLES, LOG_LEVEL_EXAMPLES
from queue_manager.api.queues import QueueIdPath
from queue_manager.domain.identity import Principal, Role
from queue_manager.domain.log_lines import LogLevel
from queue_manager.services.logs import filtered

router = APIRouter(prefix="/queues", tags=["queues"])
Services = Annotated[Container, Depends(get_container)]
Reader = Annotated[Principal, Depends(require(Role.VIEWER, "read logs"))]


@router.get(
    "/{queue_id}/steps/{index}/logs",
    summary="A step's log: the last lines, or followed until the step ends",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {
                "text/plain": {"example": "step started\nloaded 100 records\n"},
                "application/x-ndjson": {
                    "example": '{"time": "2024-06-01T12:00:00Z", "level": "info", '
                    '"message": "page fetched", "fields": {"page": 3}, "raw": "..."}\n'
                },
            }
        },
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
    level: Annotated[
        LogLevel | None,
        Query(
            description="Only lines at this level or above (lines of no known level are kept)",
            openapi_examples=LOG_LEVEL_EXAMPLES,
        ),
    ] = None,
    grep: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="Only lines holding this text (any case)",
            openapi_examples=LOG_GREP_EXAMPLES,
        ),
    ] = None,
    format: Annotated[
        Literal["text", "json"],
        Query(
            description="`text`: the lines as written; `json`: one object a line, "
            "{time, level, message, fields, raw}"
        ),
    ] = "text",
    download: Annotated[
        bool, Query(description="Sent as a file to save (`<queue>-step<index>.log`)")
    ] = False,
) -> StreamingResponse:
    stream = await services.logs.open(queue_id, index, tail=tail, follow=follow)
    headers = {}
    if download:
        name = f"{queue_id[:8]}-step{index}.{'jsonl' if format == 'json' else 'log'}"
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
    if level is None and grep is None and format == "text":
        return StreamingResponse(stream, media_type="text/plain; charset=utf-8", headers=headers)
    lines = filtered(stream, minimum=level, grep=grep, as_json=format == "json")
    media = "application/x-ndjson" if format == "json" else "text/plain; charset=utf-8"
    return StreamingResponse(lines, media_type=media, headers=headers)
