"""The overview (docs/api.md "GET /stats/overview"): runs over time by status, failure rates by
target and by symbol, what runs and waits now."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from queue_manager.api.auth import require
from queue_manager.api.container import Container, get_container
from queue_manager.api.envelope import Envelope, error_responses, success
from queue_manager.domain.identity import Principal, Role
from queue_manager.domain.overview import Overview, Window

router = APIRouter(prefix="/stats", tags=["overview"])

Services = Annotated[Container, Depends(get_container)]
Reader = Annotated[Principal, Depends(require(Role.VIEWER, "read the overview"))]

_EXAMPLE: dict[str, Any] = {
    "window": "24h",
    "since": "2026-11-30T03:00:00Z",
    "until": "2026-12-01T02:41:07Z",
    "bucket_seconds": 3600,
    "buckets": [
        {"start": "2026-11-30T03:00:00Z", "counts": {"finished": 12, "error": 1}},
        {"start": "2026-11-30T04:00:00Z", "counts": {}},
    ],
    "totals": {"finished": 12, "error": 1, "loading": 2},
    "by_target": [
        {"key": "loader-producer", "ended": 14, "failed": 1, "failure_rate": 0.0714},
        {"key": "arango-connector", "ended": 13, "failed": 0, "failure_rate": 0.0},
    ],
    "by_symbol": [{"key": "ETHUSDT", "ended": 4, "failed": 1, "failure_rate": 0.25}],
    "now": {"queued": 3, "pending": 0, "loading": 2, "stopping": 0},
}


class OverviewData(Overview):
    model_config = {"json_schema_extra": {"examples": [_EXAMPLE]}}


@router.get(
    "/overview",
    response_model=Envelope[OverviewData],
    summary="Runs over time by status, failure rates by target and symbol, what runs now",
    description="`window` is `24h` (24 hourly buckets) or `7d` (28 buckets of six hours). A run "
    "is a queue created in the window (a backfill's parent excluded: its children are the runs), "
    "counted in the bucket it was created in, by its status now. A failure rate is failed / "
    "(finished + failed): stopped queues and steps count in neither. `by_target` counts the "
    "steps of the window's ended queues, `by_symbol` queues (the 20 worst). `now` counts every "
    "queue not ended, whatever its age. Any other window is a `422` naming `window`.",
    responses=error_responses(401, 403, 503),
)
async def stats_overview(
    _: Reader,
    services: Services,
    window: Annotated[
        Window,
        Query(
            description="24h or 7d",
            openapi_examples={
                "day": {"summary": "the last 24 hours, by hour", "value": "24h"},
                "week": {"summary": "the last 7 days, by six hours", "value": "7d"},
            },
        ),
    ] = Window.DAY,
) -> Response:
    answer = await services.overview.overview(window)
    return success("Overview", answer.model_dump(mode="json"))
