"""docs/pipelines.md "Retry": the run fields of a step through the API — stored and shown as
sent, each bad one a 422 naming its field, and the OpenAPI documentation showing them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from queue_manager.app import create_app
from queue_manager.settings import Settings

BASE = {"symbol": "BTCUSDT", "time_range": "2024-01-01:2024-01-03"}
LOADER = {"target": "loader-producer", "type": "api_candles_5m"}
REAL_IMAGE = "registry.example/loader-producer:2"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        data_dir=tmp_path,
        local_worker_args="--duration 30",
        allowed_images=[REAL_IMAGE, "streamforge/queue-manager:0.1.0"],
        retry_defaults={"arango-connector": {"limit": 4, "on": ["transient"]}},
        _env_file=None,
    )
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://qm") as http:
            yield http


def _fields(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 422, answer.text
    return [e["field"] for e in answer.json()["data"]["errors"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**BASE, "type": "api", "retry": {"on": ["rate_limited", "flaky"]}}, "retry.on.1"),
        ({**BASE, "type": "api", "retry": {"limit": 101}}, "retry.limit"),
        ({**BASE, "type": "api", "retry": {"backoff": {"initial": -2}}}, "retry.backoff.initial"),
        ({**BASE, "type": "api", "retry": {"backoff": {"max": 1e12}}}, "retry.backoff.max"),
        ({**BASE, "type": "api", "timeout": -1}, "timeout"),
        ({**BASE, "type": "api", "simulate": {"fail_after": -1}}, "simulate.fail_after"),
        (
            {**BASE, "requests": [{**LOADER, "retry": {"backoff": {"jitter": 5}}}]},
            "requests.0.retry.backoff.jitter",
        ),
        (
            {**BASE, "requests": [{**LOADER, "retry": {"limit": 3, "on": ["sometimes"]}}]},
            "requests.0.retry.on.0",
        ),
        (
            {**BASE, "requests": [{**LOADER, "image": REAL_IMAGE, "simulate": {"fail_after": 1}}]},
            "requests.0.simulate",
        ),
    ],
)
async def test_bad_run_fields_are_a_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    answer = await client.post("/queues/start", json=body)
    assert field in _fields(answer)
    assert (await client.get("/queues")).json()["data"] == []


async def test_the_fields_are_stored_and_shown_with_a_targets_default(
    client: httpx.AsyncClient,
) -> None:
    retry = {"limit": 3, "backoff": {"initial": 5, "factor": 3, "max": 60, "jitter": 0}}
    body = {
        **BASE,
        "requests": [
            {**LOADER, "retry": retry, "timeout": 600, "stall_after": 30, "ping_timeout": 5},
            {"target": "arango-connector", "type": "api_candles_5m"},
        ],
    }
    answer = await client.post("/queues/start", json=body)
    assert answer.status_code == 200, answer.text
    queue_id = answer.json()["data"]["queue_id"]
    shown = (await client.get(f"/queues/{queue_id}")).json()["data"]
    loader, connector = shown["steps"]
    assert loader["retry"]["limit"] == 3 and loader["retry"]["backoff"]["initial"] == 5
    assert (loader["timeout"], loader["stall_after"], loader["ping_timeout"]) == (600, 30, 5)
    assert connector["retry"]["limit"] == 4 and connector["retry"]["on"] == ["transient"]
    assert loader["attempts_log"][0]["attempt"] == 1 and "class" in loader["attempts_log"][0]
    assert loader["retry_at"] is None and loader["error_class"] is None
    await client.post(f"/queues/stop?queue_id={queue_id}&force=true")


async def test_simulate_is_taken_on_the_reference_workers_image(client: httpx.AsyncClient) -> None:
    step = {**LOADER, "image": "streamforge/queue-manager:0.1.0", "simulate": {"fail_after": 1}}
    answer = await client.post("/queues/start", json={**BASE, "requests": [step]})
    assert answer.status_code == 200, answer.text
    queue_id = answer.json()["data"]["queue_id"]
    shown = (await client.get(f"/queues/{queue_id}")).json()["data"]
    assert shown["steps"][0]["params"]["simulate"]["fail_after"] == 1
    await client.post(f"/queues/stop?queue_id={queue_id}&force=true")


async def test_the_openapi_documentation_shows_a_step_with_retry(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    body = spec["paths"]["/queues/start"]["post"]["requestBody"]["content"]["application/json"]
    retry_example = body["examples"]["retry"]["value"]["requests"][0]
    assert retry_example["retry"]["on"][0] == "rate_limited"
    schemas = spec["components"]["schemas"]
    assert {"retry", "timeout", "simulate"} <= set(schemas["StepRequest"]["properties"])
    assert "examples" in str(schemas["StepRequest"]["properties"]["retry"])
