"""GET /queues/{queue_id}/events: a queue's history, oldest first, in cursor pages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from queue_manager.api.auth import require
from queue_manager.api.container import Container, get_container
from queue_manager.api.envelope import Envelope, error_responses, success
from queue_manager.api.queues import QueueIdPath
from queue_manager.domain.history import QueueEvent
from queue_manager.domain.identity import Principal, Role

router = APIRouter(prefix="/queues", tags=["queues"])
Services = Annotated[Container, Depends(get_container)]
Reader = Annotated[Principal, Depends(require(Role.VIEWER, "read a queue's history"))]


class EventList(Envelope[list[QueueEvent]]):
    #: the `cursor` of the next page; null when this page reached the latest event
    next_cursor: str | None = None


_EXAMPLE = {
    "status": "success",
    "message": "Queue history",
    "data": [
        {"seq": 4, "at": "2024-06-01T12:00:03Z", "kind": "step.status", "step": 4,
         "from": "loading", "to": "error", "message": "job failed: exit code 137",
         "actor": "launcher"},
        {"seq": 5, "at": "2024-06-01T12:00:03Z", "kind": "queue.status", "step": None,
         "from": "loading", "to": "error",
         "message": "step 4 (graph-builder) failed: job failed: exit code 137",
         "actor": "launcher"},
        {"seq": 6, "at": "2024-06-01T12:05:00Z", "kind": "command", "step": None,
         "from": None, "to": "retry", "message": "retry 1: steps 4, 5 run again",
         "actor": "api:token:ci"},
    ],
    "next_cursor": "6",
}  # fmt: skip


@router.get(
    "/{queue_id}/events",
    response_model=EventList,
    summary="A queue's history: every transition of the queue and its steps, oldest first",
    responses={
        200: {"content": {"application/json": {"example": _EXAMPLE}}},
        **error_responses(401, 403, 400, 404, 503),
    },
)
async def queue_events(
    _: Reader,
    services: Services,
    queue_id: QueueIdPath,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9]{1,9}$",
            description="`next_cursor` of the previous page: the events after it",
        ),
    ] = None,
) -> Response:
    after = int(cursor) if cursor is not None else 0
    events = await services.queues.events(queue_id, after=after, limit=limit + 1)
    data: list[Any] = [e.model_dump(mode="json") for e in events[:limit]]
    next_cursor = str(events[limit - 1].seq) if len(events) > limit else None
    return success("Queue history", data, next_cursor=next_cursor)
