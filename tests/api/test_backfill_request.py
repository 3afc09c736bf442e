"""Issue 28, "one shape": the backfill request is one pydantic model (docs/schedules.md#backfill)
that the route validates and OpenAPI describes, with examples; a bad one is a 422 naming each
field refused, and creates nothing. One `Symbol` rule serves every request."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from queue_manager.api.examples import BACKFILL_EXAMPLES
from queue_manager.domain.requests import SYMBOL_RULE

BODY = {"symbols": ["BTCUSDT"], "type": "api", "time_range": "2024-01-01:2024-03-31"}


def refused(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 422, answer.text
    return {e["field"]: e["message"] for e in answer.json()["data"]["errors"]}


async def queue_count(client: httpx.AsyncClient) -> int:
    return len((await client.get("/queues")).json()["data"])


async def test_openapi_shows_the_backfill_request_schema_with_examples(
    client: httpx.AsyncClient,
) -> None:
    doc = (await client.get("/openapi.json")).json()
    content = doc["paths"]["/queues/backfill"]["post"]["requestBody"]["content"]
    body = content["application/json"]
    refs = {branch["$ref"].rsplit("/", 1)[1] for branch in body["schema"]["oneOf"]}
    assert refs == {"BackfillSingle", "BackfillPipeline"}
    schemas = doc["components"]["schemas"]
    for name in refs:
        model = schemas[name]
        props = model["properties"]
        assert model["additionalProperties"] is False
        assert "chunk" in model["required"] and "time_range" in model["required"]
        assert schemas["Chunk"]["enum"] == ["day", "week", "month"]
        assert props["chunk"]["$ref"] == "#/components/schemas/Chunk"
        assert (props["max_parallel"]["minimum"], props["max_parallel"]["maximum"]) == (1, 100)
        symbols = next(s for s in props["symbols"]["anyOf"] if s.get("type") == "array")
        assert symbols["minItems"] == 1
        assert symbols["items"]["pattern"] == "^[A-Za-z0-9]{2,20}$"
    # the same Symbol wherever a request names one
    assert schemas["QueueCreate"]["properties"]["symbol"]["pattern"] == "^[A-Za-z0-9]{2,20}$"
    assert "requests" in schemas["BackfillPipeline"]["required"]
    assert "type" in schemas["BackfillSingle"]["required"]
    assert body["examples"] == BACKFILL_EXAMPLES
    assert {"year", "pipeline"} <= body["examples"].keys()


@pytest.mark.parametrize("name", sorted(BACKFILL_EXAMPLES))
async def test_every_documented_example_is_accepted(client: httpx.AsyncClient, name: str) -> None:
    answer = await client.post("/queues/backfill", json=BACKFILL_EXAMPLES[name]["value"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["message"].startswith("Backfill started: ")


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"chunk": "year"}, "chunk", "'day', 'week' or 'month'"),
        ({"chunk": "month", "time_range": "2024-01-01:2024-01-20"}, "chunk", "longer than"),
        ({"chunk": "day", "time_range": "0001-01-01:9999-12-31"}, "chunk", "more than 2000"),
        ({"chunk": "day", "max_parallel": 0}, "max_parallel", "greater than or equal to 1"),
        ({"chunk": "day", "max_parallel": 101}, "max_parallel", "less than or equal to 100"),
        ({"chunk": "day", "max_parallel": "2"}, "max_parallel", "valid integer"),
        ({"chunk": "day", "symbols": ["btc-usdt"]}, "symbols.0", SYMBOL_RULE),
        ({"chunk": "day", "symbols": ["BTCUSDT", "btcusdt"]}, "symbols", "repeat"),
        ({"chunk": "day", "symbols": []}, "symbols", "at least 1 item"),
        ({"chunk": "day", "symbols": None}, "symbols", "give symbols (a list) or symbol"),
        ({"chunk": "day", "symbol": "ETHUSDT"}, "symbols", "not both"),
        ({"chunk": "day", "time_range": "2024-03-31:2024-01-01"}, "time_range", "after"),
        ({"chunk": "day", "window": "1d"}, "window", "unknown field; allowed fields: "),
        ({}, "chunk", "field required"),
    ],
)
async def test_a_bad_backfill_is_a_422_naming_the_field_and_creates_nothing(
    client: httpx.AsyncClient, change: dict[str, Any], field: str, says: str
) -> None:
    body = {**BODY, **change}
    found = refused(await client.post("/queues/backfill", json=body))
    assert says in found[field], found
    assert await queue_count(client) == 0


async def test_every_field_refused_is_named_at_once(client: httpx.AsyncClient) -> None:
    body = {**BODY, "chunk": "month", "max_parallel": 0, "symbols": ["b$"], "type": "candles"}
    body["time_range"] = "2024-01-01:2024-01-10"
    found = refused(await client.post("/queues/backfill", json=body))
    assert {"chunk", "max_parallel", "symbols.0", "type"} <= found.keys(), found
    assert await queue_count(client) == 0


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/queues/start", {"symbol": "b$", "type": "api"}, "symbol"),
        ("POST", "/queues/start", {"symbol": "b$", "requests": []}, "symbol"),
        ("POST", "/queues/backfill", {"symbol": "b$", "type": "api", "chunk": "day"}, "symbol"),
        ("POST", "/schedules", {"name": "n", "cron": "0 0 * * *", "symbols": ["b$"]}, "symbols.0"),
        ("GET", "/queues?symbol=b$", None, "symbol"),
    ],
)
async def test_one_symbol_rule_for_every_request(
    client: httpx.AsyncClient, method: str, path: str, body: Any, field: str
) -> None:
    if body is not None:
        body = {"time_range": "2024-01-01:2024-01-03", **body}
        if path == "/schedules":
            body = {k: v for k, v in body.items() if k != "time_range"}
            body["template"] = {"type": "api_candles_5m", "window": "1d"}
    found = refused(await client.request(method, path, json=body))
    assert found[field] == SYMBOL_RULE, found


async def test_symbols_are_upper_cased_and_trimmed_the_same_everywhere(
    client: httpx.AsyncClient,
) -> None:
    body = {**BODY, "symbols": [" btcusdt", "ethusdt "], "chunk": "month"}
    answer = await client.post("/queues/backfill", json=body)
    assert answer.status_code == 200, answer.text
    parent = (await client.get(f"/queues/{answer.json()['data']['queue_id']}")).json()["data"]
    assert parent["backfill"]["symbols"] == ["BTCUSDT", "ETHUSDT"]
    listed = (await client.get("/queues", params={"symbol": " ethusdt "})).json()["data"]
    assert len(listed) == 3 and {q["symbol"] for q in listed} == {"ETHUSDT"}
