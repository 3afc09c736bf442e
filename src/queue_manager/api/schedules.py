"""Schedule endpoints (docs/schedules.md): create, list, show, change, pause, resume, delete, and
the record of each tick."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query
from fastapi.responses import Response
from pydantic import AwareDatetime

from queue_manager.api.auth import require
from queue_manager.api.container import Container, get_container
from queue_manager.api.envelope import Envelope, error_responses, success
from queue_manager.api.examples import SCHEDULE_EXAMPLES, SCHEDULE_PATCH_EXAMPLES
from queue_manager.domain.identity import Principal, Role
from queue_manager.domain.schedules import (
    Schedule,
    ScheduleCreate,
    ScheduleName,
    ScheduleRun,
    ScheduleUpdate,
)

router = APIRouter(prefix="/schedules", tags=["schedules"])

Services = Annotated[Container, Depends(get_container)]
Name = Annotated[ScheduleName, Path()]
Reader = Annotated[Principal, Depends(require(Role.VIEWER, "read schedules"))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR, "change schedules"))]


def _shown(services: Container, schedule: Schedule) -> dict[str, Any]:
    data = schedule.model_dump(mode="json")
    upcoming = services.schedules.next_tick(schedule)
    data["next_run"] = upcoming.isoformat() if upcoming else None
    return data


@router.post(
    "",
    response_model=Envelope[Schedule],
    status_code=201,
    summary="Create a schedule: a pipeline template started for its symbols at every cron tick",
    responses=error_responses(401, 403, 400, 409, 422, 503),
)
async def create_schedule(
    principal: Operator,
    services: Services,
    body: Annotated[ScheduleCreate, Body(openapi_examples=SCHEDULE_EXAMPLES)],
) -> Response:
    schedule = await services.schedules.create(body, principal.actor)
    return success("Schedule created", _shown(services, schedule), status_code=201)


@router.get(
    "",
    response_model=Envelope[list[Schedule]],
    summary="List schedules, by name, each with its next run",
    responses=error_responses(401, 403, 503),
)
async def list_schedules(_: Reader, services: Services) -> Response:
    found = await services.schedules.all()
    return success("Schedules fetched", [_shown(services, s) for s in found])


@router.get(
    "/{name}",
    response_model=Envelope[Schedule],
    summary="One schedule, with its next run",
    responses=error_responses(401, 403, 404, 503),
)
async def show_schedule(_: Reader, services: Services, name: Name) -> Response:
    return success("Schedule", _shown(services, await services.schedules.get(name)))


@router.patch(
    "/{name}",
    response_model=Envelope[Schedule],
    summary="Change a schedule: the fields given replace the stored ones",
    responses=error_responses(401, 403, 400, 404, 422, 503),
)
async def update_schedule(
    principal: Operator,
    services: Services,
    name: Name,
    body: Annotated[ScheduleUpdate, Body(openapi_examples=SCHEDULE_PATCH_EXAMPLES)],
) -> Response:
    schedule = await services.schedules.update(name, body, principal.actor)
    return success("Schedule changed", _shown(services, schedule))


@router.post(
    "/{name}/pause",
    response_model=Envelope[Schedule],
    summary="Pause: no tick runs until resumed (runs already started go on)",
    responses=error_responses(401, 403, 404, 503),
)
async def pause_schedule(principal: Operator, services: Services, name: Name) -> Response:
    schedule = await services.schedules.set_paused(name, True, principal.actor)
    return success("Schedule paused", _shown(services, schedule))


@router.post(
    "/{name}/resume",
    response_model=Envelope[Schedule],
    summary="Resume: ticks from now on run; the ticks of the pause are not caught up",
    responses=error_responses(401, 403, 404, 503),
)
async def resume_schedule(principal: Operator, services: Services, name: Name) -> Response:
    schedule = await services.schedules.set_paused(name, False, principal.actor)
    return success("Schedule resumed", _shown(services, schedule))


@router.delete(
    "/{name}",
    response_model=Envelope[None],
    summary="Delete a schedule and the record of its ticks (its queues stay)",
    responses=error_responses(401, 403, 404, 503),
)
async def delete_schedule(principal: Operator, services: Services, name: Name) -> Response:
    await services.schedules.delete(name, principal.actor)
    return success("Schedule deleted", None)


@router.get(
    "/{name}/runs",
    response_model=Envelope[list[ScheduleRun]],
    summary="What became of each tick (started, skipped, missed), newest first",
    responses=error_responses(401, 403, 404, 503),
)
async def schedule_runs(
    _: Reader,
    services: Services,
    name: Name,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[AwareDatetime | None, Query(description="Ticks before this instant")] = None,
) -> Response:
    runs = await services.schedules.runs(name, before=before, limit=limit)
    return success("Schedule runs", [r.model_dump(mode="json") for r in runs])
