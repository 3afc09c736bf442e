"""Embedded mode: local workers report telemetry and poll commands over HTTP
(docs/worker-protocol.md). A worker's credential speaks for its own step run only, and only
while that run is open (docs/security.md#worker-credentials)."""

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

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def _refusal(
    services: Container, queue_id: Any, producer: Any, authorization: str | None
) -> Response | None:
    """Why this worker may not speak for `producer` of `queue_id` now; None when it may."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return error(
            "Worker credential required: send Authorization: Bearer $QM_WORKER_TOKEN",
            401,
            headers=_CHALLENGE,
        )
    if not isinstance(producer, str) or not producer:
        return error(
            "A worker report must name its producer (its TELEMETRY_PRODUCER_ID): a worker "
            "credential speaks for one step run only",
            401,
            headers=_CHALLENGE,
        )
    if not isinstance(queue_id, str) or not services.tokens.check(producer, token.strip()):
        return error(
            f"Invalid worker credential for producer {producer[:200]}: a worker may speak for "
            "its own step run only",
            401,
            headers=_CHALLENGE,
        )
    try:
        refused = await services.workers.refusal(queue_id, producer)
    except QueueNotFound:
        return error(f"Queue {queue_id[:64]} not found", 404)
    return error(refused, 403) if refused is not None else None


@router.post("/telemetry")
async def telemetry(
    request: Request,
    services: Services,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    try:
        data = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return error("Malformed JSON body", 400)
    if not isinstance(data, dict):
        return error("A report is a JSON object", 400)
    refused = await _refusal(services, data.get("queue_id"), data.get("producer"), authorization)
    if refused is not None:
        return refused
    # Passed on as checked: the dispatcher reads exactly the queue and producer authorised
    # (a body with a key twice could otherwise read one way here and another way there).
    await services.workers.accept_telemetry(orjson.dumps(data))
    return success("Accepted", status_code=202)


@router.get("/commands")
async def commands(
    services: Services,
    queue_id: Annotated[str, Query(max_length=64)],
    producer: Annotated[str | None, Query(max_length=200)] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    refused = await _refusal(services, queue_id, producer, authorization)
    if refused is not None:
        return refused
    assert producer is not None
    commands = await services.workers.commands(queue_id, producer)
    return success("Commands", {"commands": commands})
