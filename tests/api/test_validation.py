"""docs/api.md: every bad input gets a 4xx envelope naming the field, and changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

BASE = {"symbol": "BTCUSDT", "time_range": "2024-01-01:2024-01-03"}


def fields(answer: httpx.Response) -> list[str]:
    return [e["field"] for e in answer.json()["data"]["errors"]]


async def count(client: httpx.AsyncClient) -> int:
    return len((await client.get("/queues")).json()["data"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**BASE, "type": "api", "symbol": "btc-usdt"}, "symbol"),
        ({**BASE, "type": "api", "symbol": "B"}, "symbol"),
        ({**BASE, "type": "api", "time_range": "2024-01-01"}, "time_range"),
        ({**BASE, "type": "api", "time_range": "2024-02-30:2024-03-01"}, "time_range"),
        ({**BASE, "type": "api", "time_range": "2024-03-02:2024-03-01"}, "time_range"),
        ({**BASE, "type": "candles"}, "type"),
        ({**BASE}, "type"),
        ({"type": "api", "time_range": "2024-01-01:2024-01-03"}, "symbol"),
        ({**BASE, "type": "api", "colour": "red"}, "colour"),
        ({**BASE, "requests": []}, "requests"),
        ({**BASE, "requests": [{"target": "loader-producer"}]}, "requests.0.type"),
        (
            {**BASE, "requests": [{"target": "loader-producer", "type": "api_x", "depth": 3}]},
            "requests.0.depth",
        ),
        (
            {
                **BASE,
                "requests": [{"target": "loader-producer", "type": "api_x", "max_retries": -1}],
            },
            "requests.0.max_retries",
        ),
        (
            {**BASE, "requests": [{"target": "graph-builder", "type": "gnn_graph"}]},
            "requests.0.collection_inputs",
        ),
        (
            {
                **BASE,
                "requests": [{"target": "loader-producer", "type": "api_x", "depends_on": [0]}],
            },
            "requests.0.depends_on",
        ),
    ],
)
async def test_invalid_start_names_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    answer = await client.post("/queues/start", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["status"] == "error"
    assert field in fields(answer)
    assert await count(client) == 0


async def test_unknown_target_lists_the_allowed_ones(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/queues/start", json={**BASE, "requests": [{"target": "spark", "type": "x"}]}
    )
    assert answer.status_code == 422
    error = answer.json()["data"]["errors"][0]
    assert error["field"] == "requests.0.target"
    for target in (
        "loader-producer",
        "arango-connector",
        "graph-builder",
        "gnn-trainer",
        "visualizer",
    ):
        assert target in error["message"]


async def test_unknown_field_lists_the_allowed_ones(client: httpx.AsyncClient) -> None:
    answer = await client.post("/queues/start", json={**BASE, "type": "api", "colour": "red"})
    message = answer.json()["data"]["errors"][0]["message"]
    assert "symbol" in message and "time_range" in message and "requests" in message


async def test_malformed_json_is_a_4xx_envelope(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/queues/start", content=b'{"symbol": ', headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400
    assert answer.json()["status"] == "error"


async def test_oversized_body_is_refused(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/queues/start",
        content=b'{"symbol": "' + b"A" * 2_000_000 + b'"}',
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 413
    assert answer.json()["status"] == "error"


async def test_unknown_queue_is_404(client: httpx.AsyncClient) -> None:
    for answer in (
        await client.get("/queues/00000000-0000-4000-8000-000000000000"),
        await client.post("/queues/stop?queue_id=00000000-0000-4000-8000-000000000000"),
    ):
        assert answer.status_code == 404
        assert answer.json()["status"] == "error"


async def test_stop_without_queue_id_names_it(client: httpx.AsyncClient) -> None:
    answer = await client.post("/queues/stop")
    assert answer.status_code == 422
    assert fields(answer) == ["queue_id"]


async def test_bad_list_parameters(client: httpx.AsyncClient) -> None:
    assert fields(await client.get("/queues?limit=0")) == ["limit"]
    assert fields(await client.get("/queues?limit=1001")) == ["limit"]
    assert fields(await client.get("/queues?status=flying")) == ["status"]
    assert fields(await client.get("/queues?cursor=nonsense")) == ["cursor"]


async def test_unknown_route_is_an_envelope(client: httpx.AsyncClient) -> None:
    answer = await client.get("/nowhere")
    assert answer.status_code == 404
    assert answer.json()["status"] == "error"
