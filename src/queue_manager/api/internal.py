"""Embedded mode: local workers report telemetry and poll commands over HTTP
(docs/worker-protocol.md)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response

from queue_manager.api.container import Container, get_container
from queue_manager.api.envelope import error, success
from queue_manager.domain.errors import QueueNotFound

router = APIRouter(prefix="/internal", include_in_schema=False)
Services = Annotated[Container, Depends(get_container)]


def _authorised(services: Container, queue_id: Any, authorization: str | None) -> bool:
    if not isinstance(queue_id, str) or not authorization:
        return False
    scheme, _, token = authorization.partition(" ")
    return scheme.lower() == "bearer" and services.tokens.check(queue_id, token.strip())


@router.post("/telemetry")
async def telemetry(
    request: Request,
    services: Services,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    raw = await request.body()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return error("Malformed JSON body", 400)
    queue_id = data.get("queue_id") if isinstance(data, dict) else None
    if not _authorised(services, queue_id, authorization):
        return error("Invalid worker token for this queue", 401)
    await services.workers.accept_telemetry(raw)
    return success("Accepted", status_code=202)


@router.get("/commands")
async def commands(
    services: Services,
    queue_id: Annotated[str, Query(max_length=64)],
    producer: Annotated[str | None, Query(max_length=200)] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    if not _authorised(services, queue_id, authorization):
        return error("Invalid worker token for this queue", 401)
    try:
        commands = await services.workers.commands(queue_id, producer)
    except QueueNotFound:
        return error(f"Queue {queue_id} not found", 404)
    return success("Commands", {"commands": commands})
