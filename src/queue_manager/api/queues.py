"""Queue endpoints: start, stop, list, show."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from queue_manager.api.auth import require
from queue_manager.api.container import Container, get_container
from queue_manager.api.envelope import Envelope, error_responses, success, success_json
from queue_manager.api.examples import (
    BACKFILL_EXAMPLES,
    CREATED_FROM_EXAMPLES,
    CREATED_TO_EXAMPLES,
    START_EXAMPLES,
    TOP_LEVEL_EXAMPLES,
)
from queue_manager.api.plans import checked_start
from queue_manager.domain.backfill import BackfillBody
from queue_manager.domain.errors import InvalidRequest
from queue_manager.domain.identity import Principal, Role
from queue_manager.domain.models import QueueState, QueueStatus
from queue_manager.domain.requests import IdPrefix, StartRequest, Symbol

router = APIRouter(prefix="/queues", tags=["queues"])
#: visible ASCII: what an HTTP header carries as sent (a control character never reaches us)
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]+$"

Services = Annotated[Container, Depends(get_container)]
QueueId = Annotated[str, Field(min_length=1, max_length=64)]
#: the queue id in a route's path
QueueIdPath = Annotated[str, Path(min_length=1, max_length=64)]
Starter = Annotated[Principal, Depends(require(Role.OPERATOR, "start a queue"))]
Stopper = Annotated[Principal, Depends(require(Role.OPERATOR, "stop a queue"))]
Reader = Annotated[Principal, Depends(require(Role.VIEWER, "read queues"))]


class StartData(BaseModel):
    queue_id: str


class StopBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queue_id: QueueId
    force: bool = False


class StopData(BaseModel):
    queue_id: str
    status: QueueStatus


class QueueList(Envelope[list[QueueState]]):
    next_cursor: str | None = None


@router.post(
    "/start",
    response_model=Envelope[StartData],
    summary="Start a queue (single step or pipeline)",
    responses=error_responses(401, 403, 400, 409, 413, 503),
)
async def start_queue(
    principal: Starter,
    services: Services,
    _: Annotated[None, Depends(checked_start)],
    body: Annotated[StartRequest, Body(openapi_examples=START_EXAMPLES)],
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=200,
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="Retrying with the same key returns the same queue_id, launching nothing",
        ),
    ] = None,
) -> Response:
    queue = await services.queues.start(body, idempotency_key, actor=principal.actor)
    return success("Queue started", {"queue_id": queue.id})


@router.post(
    "/backfill",
    response_model=Envelope[StartData],
    summary="Backfill: a parent queue and one child per (symbol, chunk) of a long time range",
    description="The body is a start request (either form) plus `chunk` (day, week or month), "
    "`symbols` (instead of `symbol`) and `max_parallel` (children running at once, 1 to 100). "
    "Children go through admission; the parent's status and `backfill.progress` follow them. "
    "A `422` names each field refused: a chunk longer than the range, more than 2000 children, "
    "a bad symbol or `max_parallel`; nothing is created then.",
    responses=error_responses(401, 403, 400, 409, 413, 422, 503),
)
async def start_backfill(
    principal: Starter,
    services: Services,
    body: Annotated[BackfillBody, Body(openapi_examples=BACKFILL_EXAMPLES)],
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=200,
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="Retrying with the same key returns the same parent, creating nothing",
        ),
    ] = None,
) -> Response:
    parent = await services.backfills.start(body, idempotency_key, actor=principal.actor)
    children = parent.backfill.children if parent.backfill else 0
    return success(f"Backfill started: {children} child queues", {"queue_id": parent.id})


@router.post(
    "/stop",
    response_model=Envelope[StopData],
    summary="Stop a queue: graceful, or at once with force=true",
    responses=error_responses(401, 403, 400, 404, 409, 503),
)
async def stop_queue(
    principal: Stopper,
    services: Services,
    queue_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    force: Annotated[bool, Query()] = False,
    body: Annotated[StopBody | None, Body()] = None,
) -> Response:
    target = queue_id or (body.queue_id if body else None)
    if target is None:
        raise InvalidRequest(
            [{"field": "queue_id", "message": "give queue_id as a query parameter or in the body"}]
        )
    queue = await services.backfills.stop(
        target, force=force or bool(body and body.force), actor=principal.actor
    )
    return success("Queue stopped", {"queue_id": queue.id, "status": queue.status.value})


@router.get(
    "",
    response_model=QueueList,
    summary="List queues, newest first",
    responses=error_responses(401, 403, 503),
)
async def list_queues(
    _: Reader,
    services: Services,
    status: Annotated[QueueStatus | None, Query()] = None,
    symbol: Annotated[Symbol | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    parent: Annotated[
        str | None, Query(min_length=1, max_length=64, description="A backfill's children")
    ] = None,
    id_prefix: Annotated[
        IdPrefix | None,
        Query(
            description="Only the queues whose id starts with this: 6 to 64 letters, digits "
            "or '-', e.g. the short id the dashboard and the CLI show"
        ),
    ] = None,
    top_level: Annotated[
        bool,
        Query(
            description="Leave out backfills' children (the dashboard and `queue-manager list` "
            "fold them under their parent)",
            openapi_examples=TOP_LEVEL_EXAMPLES,
        ),
    ] = False,
    created_from: Annotated[
        datetime | None,
        Query(
            description="Only queues created at or after this instant: an ISO 8601 date or "
            "date-time (UTC when it has no zone)",
            openapi_examples=CREATED_FROM_EXAMPLES,
        ),
    ] = None,
    created_to: Annotated[
        datetime | None,
        Query(
            description="Only queues created before this instant (exclusive), same form; "
            "not before `created_from`",
            openapi_examples=CREATED_TO_EXAMPLES,
        ),
    ] = None,
) -> Response:
    page = await services.queues.page(
        status=status,
        symbol=symbol,
        limit=limit,
        cursor=cursor,
        parent=parent,
        id_prefix=id_prefix,
        top_level=top_level,
        created_from=created_from,
        created_to=created_to,
    )
    data: list[Any] = [q.model_dump(mode="json") for q in page.items]
    positions = await services.queues.positions(page.items)
    for item in data:
        if item["id"] in positions:
            item["position"] = positions[item["id"]]
    return success("Queues fetched", data, next_cursor=page.next_cursor)


@router.get(
    "/{queue_id}",
    response_model=Envelope[QueueState],
    summary="One queue with its steps",
    responses=error_responses(401, 403, 404, 503),
)
async def show_queue(_: Reader, services: Services, queue_id: QueueIdPath) -> Response:
    return success_json("Queue status", await services.queues.get_json(queue_id))


class ResubmitData(BaseModel):
    queue_id: str
    resubmitted_from: str


Retrier = Annotated[Principal, Depends(require(Role.OPERATOR, "retry a queue"))]
Resubmitter = Annotated[Principal, Depends(require(Role.OPERATOR, "resubmit a queue"))]


@router.post(
    "/{queue_id}/retry",
    response_model=Envelope[StopData],
    summary="Run again what did not finish (error or stopped queues); finished steps are kept",
    responses=error_responses(401, 403, 404, 409, 503),
)
async def retry_queue(
    principal: Retrier,
    services: Services,
    queue_id: QueueIdPath,
    from_step: Annotated[
        int | None,
        Query(ge=0, le=63, description="Also re-run this step and everything downstream of it"),
    ] = None,
) -> Response:
    queue = await services.backfills.retry(queue_id, from_step=from_step, actor=principal.actor)
    return success("Queue retried", {"queue_id": queue.id, "status": queue.status.value})


@router.post(
    "/{queue_id}/resubmit",
    response_model=Envelope[ResubmitData],
    summary="Start a new queue from the same request as an ended one",
    responses=error_responses(401, 403, 404, 409, 503),
)
async def resubmit_queue(
    principal: Resubmitter,
    services: Services,
    queue_id: QueueIdPath,
) -> Response:
    queue = await services.backfills.resubmit(queue_id, actor=principal.actor)
    return success("Queue resubmitted", {"queue_id": queue.id, "resubmitted_from": queue_id})
