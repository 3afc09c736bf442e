"""Probes (docs/api.md): live = the process answers; startup = the lifespan finished;
ready = store, bus and launcher all answer."""

from __future__ import annotations

import contextlib
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from queue_manager.api.auth import metrics_reader
from queue_manager.api.container import Container, get_container
from queue_manager.api.envelope import Envelope, ErrorEnvelope, error, success
from queue_manager.domain.errors import DependencyUnavailable

router = APIRouter(tags=["health"])
Services = Annotated[Container, Depends(get_container)]


@router.get("/health/live", response_model=Envelope[None])
async def live() -> Response:
    return success("Alive")


@router.get(
    "/health/startup", response_model=Envelope[None], responses={503: {"model": ErrorEnvelope}}
)
async def startup(services: Services) -> Response:
    if not services.started:
        return error("Starting", 503)
    return success("Started")


async def readiness(services: Container) -> dict[str, dict[str, Any]]:
    checks = await services.health.readiness()
    # A healthy check carries no `detail` key at all, as before.
    return {
        name: {k: v for k, v in asdict(check).items() if k != "detail" or v is not None}
        for name, check in checks.items()
    }


@router.get(
    "/health/ready",
    response_model=Envelope[dict[str, Any]],
    responses={503: {"model": ErrorEnvelope}},
)
async def ready(services: Services) -> Response:
    checks = await readiness(services)
    down = [name for name, check in checks.items() if not check["ok"]]
    if down or not services.started:
        reason = f"Unavailable: {', '.join(down)}" if down else "Starting"
        return error(reason, 503, checks, {"Retry-After": "5"})
    return success("All systems operational", checks)


@router.get(
    "/metrics",
    tags=["observability"],
    response_class=Response,
    dependencies=[Depends(metrics_reader)],
)
async def metrics(services: Services) -> Response:
    # Without an answer from the store, serve the last known gauge values rather than nothing.
    with contextlib.suppress(DependencyUnavailable, TimeoutError):
        services.metrics.set_queue_counts(await services.health.queue_counts())
    return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)
