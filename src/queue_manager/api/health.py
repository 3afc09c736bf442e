"""Probes (docs/api.md): live = the process answers; startup = the lifespan finished;
ready = store, bus and launcher all answer."""

from __future__ import annotations

import asyncio
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

PING_TIMEOUT = 2.0


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


async def _check(name: str, backend: str, ping: Any) -> dict[str, Any]:
    try:
        await asyncio.wait_for(ping(), PING_TIMEOUT)
    except DependencyUnavailable as exc:
        return {"name": name, "backend": backend, "ok": False, "detail": exc.detail}
    except TimeoutError:
        return {"name": name, "backend": backend, "ok": False, "detail": "no answer in 2 s"}
    return {"name": name, "backend": backend, "ok": True}


async def readiness(services: Container) -> dict[str, dict[str, Any]]:
    d = services.engine.d
    checks = await asyncio.gather(
        _check("store", d.store.name, d.store.ping),
        _check("bus", d.bus.name, d.bus.ping),
        _check("launcher", d.launcher.name, d.launcher.ping),
    )
    return {c.pop("name"): c for c in checks}


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
    try:
        counts = await asyncio.wait_for(services.engine.d.store.count_by_status(), PING_TIMEOUT)
        services.metrics.set_queue_counts(counts)
    except (DependencyUnavailable, TimeoutError):
        pass  # serve the last known gauge values rather than no metrics at all
    return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)
