"""docs/api.md "POST /queues/plan", "GET /collections": a start request checked in one pass, its
plan previewed, and its inputs held to the catalog of collections that finished steps wrote."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from tests.support.waiting import wait_until_async

JUNE = {"symbol": "BTCUSDT", "time_range": "2024-06-01:2024-06-30"}
LOADER = {"target": "loader-producer", "type": "api_candles_5m"}
CONNECTOR = {"target": "arango-connector", "type": "api_candles_5m"}


def graph(*inputs: str, **more: Any) -> dict[str, Any]:
    return {
        "target": "graph-builder",
        "type": "gnn_graph",
        "collection_inputs": list(inputs),
        "collection_output": "btc_graph_2024_06",
        **more,
    }


def errors(answer: httpx.Response) -> dict[str, str]:
    return {e["field"]: e["message"] for e in answer.json()["data"]["errors"]}


async def finish(client: httpx.AsyncClient, queue_id: str) -> None:
    """Its one step reports `finished` on the bus, as its worker would, and the queue ends."""
    queue = (await client.get(f"/queues/{queue_id}")).json()["data"]
    report = {
        "event": "finished",
        "queue_id": queue_id,
        "producer": queue["steps"][0]["telemetry_id"],
        "records_written": 120,
        "finished": True,
        "sent_at": datetime.now(UTC).isoformat(),
    }
    await client.adapters.bus.send_telemetry(orjson.dumps(report))  # type: ignore[attr-defined]

    async def finished() -> bool:
        queue = (await client.get(f"/queues/{queue_id}")).json()["data"]
        return bool(queue["status"] == "finished")

    await wait_until_async(finished, 10, what=f"queue {queue_id} to finish")


async def count(client: httpx.AsyncClient) -> int:
    return len((await client.get("/queues")).json()["data"])


async def test_the_plan_of_a_valid_pipeline_orders_its_steps_and_says_why(
    client: httpx.AsyncClient,
) -> None:
    body = {**JUNE, "requests": [graph("btc_candles_5m_2024_06"), CONNECTOR, LOADER]}
    answer = await client.post("/queues/plan", json=body)
    assert answer.status_code == 200, answer.text
    plan = answer.json()["data"]
    assert plan["valid"] is True and plan["errors"] == []
    # the loader first, its connector with it, the graph-builder once the connector finished
    assert [(s["index"], s["wave"]) for s in plan["steps"]] == [(2, 0), (1, 1), (0, 2)]
    by_index = {s["index"]: s for s in plan["steps"]}
    assert by_index[1]["after"] == [
        {
            "step": 2,
            "reason": "topic",
            "names": ["<queue_id>.api_candles_5m"],
            "starts": "together",
        }
    ]
    assert by_index[0]["after"] == [
        {
            "step": 1,
            "reason": "collection",
            "names": ["btc_candles_5m_2024_06"],
            "starts": "finished",
        }
    ]
    assert plan["collections"] == ["btc_candles_5m_2024_06", "btc_graph_2024_06"]
    assert await count(client) == 0  # nothing stored


async def test_explicit_depends_on_is_the_reason_given(client: httpx.AsyncClient) -> None:
    body = {**JUNE, "requests": [LOADER, {**CONNECTOR, "depends_on": [0]}]}
    plan = (await client.post("/queues/plan", json=body)).json()["data"]
    assert plan["steps"][1]["after"][0]["reason"] == "depends_on"


async def test_a_plan_names_every_problem_of_a_request_at_once(
    client: httpx.AsyncClient,
) -> None:
    body = {
        **JUNE,
        "requests": [
            {"target": "spark", "type": "x"},  # unknown target
            {"target": "gnn-trainer", "type": "gnn_train"},  # required parameters missing
            {**LOADER, "depends_on": [7]},  # no such step
            {**LOADER, "interval": "often"},  # a bad value
        ],
    }
    answer = await client.post("/queues/plan", json=body)
    assert answer.status_code == 200, answer.text
    plan = answer.json()["data"]
    assert plan["valid"] is False
    named = {e["field"] for e in plan["errors"]}
    assert {
        "requests.0.target",
        "requests.1.graph_collection",
        "requests.1.model_output",
        "requests.2.depends_on",
        "requests.3.interval",
    } <= named
    assert plan["steps"] == []  # not well-formed enough to plan


async def test_start_names_every_bad_field_in_one_422(client: httpx.AsyncClient) -> None:
    body = {
        **JUNE,
        "requests": [
            {"target": "spark", "type": "x"},
            {"target": "visualizer", "type": "graph_metrics_stream"},
            {**LOADER, "depends_on": [9]},
        ],
    }
    answer = await client.post("/queues/start", json=body)
    assert answer.status_code == 422, answer.text
    found = errors(answer)
    assert "loader-producer" in found["requests.0.target"]
    assert found["requests.1.source"] == "visualizer requires source"
    assert "9 is not the index of another step" in found["requests.2.depends_on"]
    assert await count(client) == 0


async def test_a_well_formed_request_breaking_several_rules_names_each(
    client: httpx.AsyncClient,
) -> None:
    body = {
        **JUNE,
        "requests": [
            LOADER,
            {"target": "gnn-trainer", "type": "gnn_train", "graph_collection": "btc_graph_2024_6"},
            graph("btc_candles_5m_2024_6"),
        ],
    }
    answer = await client.post("/queues/start", json=body)
    assert answer.status_code == 422, answer.text
    found = errors(answer)
    assert set(found) == {
        "requests.1.model_output",
        "requests.1.graph_collection",
        "requests.2.collection_inputs",
    }
    assert "did you mean btc_graph_2024_06?" in found["requests.1.graph_collection"]


async def test_a_typo_in_an_input_is_a_422_suggesting_the_closest_name(
    client: httpx.AsyncClient,
) -> None:
    body = {**JUNE, "requests": [LOADER, CONNECTOR, graph("btc_candles_5m_2024_6")]}
    answer = await client.post("/queues/start", json=body)
    assert answer.status_code == 422, answer.text
    message = errors(answer)["requests.2.collection_inputs"]
    assert "'btc_candles_5m_2024_6'" in message
    assert "did you mean btc_candles_5m_2024_06?" in message
    # the plan shows the same error, and the graph-builder waiting for nothing
    plan = (await client.post("/queues/plan", json=body)).json()["data"]
    assert plan["errors"] == [{"field": "requests.2.collection_inputs", "message": message}]
    assert [s["after"] for s in plan["steps"] if s["index"] == 2] == [[]]
    assert await count(client) == 0


async def test_an_input_declared_external_is_accepted(client: httpx.AsyncClient) -> None:
    name = "btc_candles_5m_2024_6"
    body = {**JUNE, "requests": [graph(name, external_inputs=[name])]}
    answer = await client.post("/queues/start", json=body)
    assert answer.status_code == 200, answer.text
    # an external name that is no input of the step is a typo too
    wrong = {**JUNE, "requests": [graph(name, external_inputs=["btc_other"])]}
    found = errors(await client.post("/queues/start", json=wrong))
    assert "'btc_other' is not an input of this step" in found["requests.0.external_inputs"]


async def test_an_input_an_earlier_queue_produced_is_accepted_and_its_lineage_kept(
    client: httpx.AsyncClient,
) -> None:
    # the candles came another way; the graph-builder writes btc_graph_2024_06 from them
    made = graph("btc_candles_5m_2024_06", external_inputs=["btc_candles_5m_2024_06"])
    loaded = await client.post("/queues/start", json={**JUNE, "requests": [made]})
    assert loaded.status_code == 200, loaded.text
    first = loaded.json()["data"]["queue_id"]
    trainer = {
        "target": "gnn-trainer",
        "type": "gnn_train",
        "graph_collection": "btc_graph_2024_06",
        "model_output": "gnn_model_btc_2024_06",
    }
    body = {**JUNE, "requests": [trainer]}
    refused = await client.post("/queues/start", json=body)
    assert refused.status_code == 422  # not produced until the graph-builder has finished

    await finish(client, first)
    listed = (await client.get("/collections?prefix=btc_graph")).json()
    assert [c["name"] for c in listed["data"]] == ["btc_graph_2024_06"]
    producer = listed["data"][0]["producer"]
    assert (producer["queue_id"], producer["step"], producer["target"]) == (
        first,
        0,
        "graph-builder",
    )
    assert producer["inputs"] == ["btc_candles_5m_2024_06"]
    assert (await client.get("/collections?prefix=zzz")).json()["data"] == []

    started = await client.post("/queues/start", json=body)
    assert started.status_code == 200, started.text
    second = started.json()["data"]["queue_id"]
    await finish(client, second)
    lineage = (await client.get("/collections/btc_graph_2024_06")).json()["data"]
    assert [(c["queue_id"], c["step"], c["target"]) for c in lineage["consumers"]] == [
        (second, 0, "gnn-trainer")
    ]
    model = (await client.get("/collections/gnn_model_btc_2024_06")).json()["data"]
    assert model["producer"]["queue_id"] == second
    assert model["producer"]["inputs"] == ["btc_graph_2024_06"]


async def test_an_unknown_collection_is_a_404_and_a_bad_prefix_a_422(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/collections/nothing_here")
    assert answer.status_code == 404
    assert answer.json()["data"] == {"name": "nothing_here"}
    bad = await client.get("/collections?prefix=a%20b")
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["data"]["errors"]] == ["prefix"]
