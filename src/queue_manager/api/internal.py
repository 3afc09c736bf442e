"""Embedded mode: local workers report telemetry and poll commands over HTTP
(docs/worker-protocol.md)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response

from queue_manager.api.container import Container, get_container
from queue_manager.api.envelope import error, success
from queue_manager.domain.models import QueueState

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
    # Through the bus, like Kafka telemetry: one dispatcher applies everything.
    await services.engine.d.bus.send_telemetry(raw)
    return success("Accepted", status_code=202)


def _commands(queue: QueueState, producer: str | None) -> list[dict[str, Any]]:
    step = queue.step_by_producer(producer) if producer else None
    stop = (
        queue.stop_requested_at is not None
        or queue.status.terminal
        or (step is not None and step.status.terminal and step.status.value != "finished")
    )
    return [{"queue_id": queue.id, "command": "stop", "payload": {}}] if stop else []


@router.get("/commands")
async def commands(
    services: Services,
    queue_id: Annotated[str, Query(max_length=64)],
    producer: Annotated[str | None, Query(max_length=200)] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    if not _authorised(services, queue_id, authorization):
        return error("Invalid worker token for this queue", 401)
    queue = await services.engine.d.store.get(queue_id)
    if queue is None:
        return error(f"Queue {queue_id} not found", 404)
    return success("Commands", {"commands": _commands(queue, producer)})
