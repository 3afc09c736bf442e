"""A start request checked before it is sent: `POST /queues/plan` (docs/api.md), and the
one-pass check `POST /queues/start` runs first (every bad field in one 422)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import Response
from pydantic import ConfigDict

from queue_manager.api.auth import require
from queue_manager.api.container import Container, get_container
from queue_manager.api.envelope import Envelope, error_responses, success
from queue_manager.api.examples import START_EXAMPLES
from queue_manager.domain.identity import Principal, Role
from queue_manager.domain.plan_preview import Plan

router = APIRouter(prefix="/queues", tags=["queues"])

Services = Annotated[Container, Depends(get_container)]
Planner = Annotated[Principal, Depends(require(Role.VIEWER, "plan a queue"))]

_EXAMPLE: dict[str, Any] = {
    "valid": False,
    "errors": [
        {
            "field": "requests.2.collection_inputs",
            "message": "'btc_candles_5m_2024_6' is produced by no step of this request and by "
            "no finished queue; did you mean btc_candles_5m_2024_06? (list it in "
            "external_inputs if it came another way)",
        }
    ],
    "steps": [
        {
            "index": 0,
            "target": "loader-producer",
            "type": "api_candles_5m",
            "wave": 0,
            "after": [],
            "reads": [],
            "external_inputs": [],
            "writes": [],
            "kafka_topic": "<queue_id>.api_candles_5m",
        },
        {
            "index": 1,
            "target": "arango-connector",
            "type": "api_candles_5m",
            "wave": 1,
            "after": [
                {
                    "step": 0,
                    "reason": "topic",
                    "names": ["<queue_id>.api_candles_5m"],
                    "starts": "together",
                }
            ],
            "reads": [],
            "external_inputs": [],
            "writes": ["btc_candles_5m_2024_06"],
            "kafka_topic": "<queue_id>.api_candles_5m",
        },
        {
            "index": 2,
            "target": "graph-builder",
            "type": "gnn_graph",
            "wave": 0,
            "after": [],
            "reads": ["btc_candles_5m_2024_6"],
            "external_inputs": [],
            "writes": ["btc_graph_2024_06"],
            "kafka_topic": None,
        },
    ],
    "collections": ["btc_candles_5m_2024_06", "btc_graph_2024_06"],
}


class PlanData(Plan):
    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})


async def checked_start(request: Request, services: Services) -> None:
    """Every bad field of a start body in one 422, before the schema's own validation (which
    then passes): the schema alone would hide the rules of the steps it refuses. A body that
    is not JSON is left to FastAPI's 400."""
    try:
        raw = await request.json()
    except ValueError:
        return
    await services.plans.check_start(raw)


@router.post(
    "/plan",
    response_model=Envelope[PlanData],
    summary="Dry run of a start: the planned steps, their order and why, every error at once",
    description="The body is a start request (either form). The answer plans it as "
    "`POST /queues/start` would — steps in the order they can start (`wave`), what each waits "
    "for and why (`topic`, `collection`, `depends_on`), the collections read and written — and "
    "names every error in `errors` (`valid` is false then); `steps` is empty when the request "
    "is not well-formed enough to plan. Nothing is stored or launched.",
    responses=error_responses(401, 403, 400, 413),
)
async def plan_queue(
    _: Planner,
    services: Services,
    body: Annotated[dict[str, Any], Body(openapi_examples=START_EXAMPLES)],
) -> Response:
    plan = await services.plans.plan(body)
    message = "Plan" if plan.valid else f"Plan with {len(plan.errors)} error(s)"
    return success(message, plan.model_dump(mode="json"))
