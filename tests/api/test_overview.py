"""GET /stats/overview (docs/api.md): the window's runs by status, the rates, what runs now;
a window it does not know is a 422 naming `window` and what it takes."""

from __future__ import annotations

import httpx

from tests.support.waiting import wait_until_async


async def test_started_queues_are_counted_in_the_current_bucket(client: httpx.AsyncClient) -> None:
    body = {"symbol": "BTCUSDT", "type": "api", "time_range": "2024-01-01:2024-01-01"}
    ids = []
    for symbol in ("BTCUSDT", "ETHUSDT"):
        started = await client.post("/queues/start", json={**body, "symbol": symbol})
        assert started.status_code == 200, started.text
        ids.append(started.json()["data"]["queue_id"])
    stopped = await client.post("/queues/stop", params={"queue_id": ids[1], "force": "true"})
    assert stopped.status_code == 200, stopped.text

    async def status_of(queue_id: str) -> str:
        return str((await client.get(f"/queues/{queue_id}")).json()["data"]["status"])

    async def ended() -> bool:
        return await status_of(ids[1]) == "stopped"

    await wait_until_async(ended, 30, what="the stopped queue ends")
    running = await status_of(ids[0])
    answer = await client.get("/stats/overview", params={"window": "7d"})
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert data["window"] == "7d" and data["bucket_seconds"] == 6 * 3600
    assert len(data["buckets"]) == 28
    assert data["buckets"][-1]["counts"] == {running: 1, "stopped": 1}
    assert all(b["counts"] == {} for b in data["buckets"][:-1])
    assert data["totals"] == {running: 1, "stopped": 1}
    # Nothing finished or failed: no rate (a stopped queue is not a failure).
    assert data["by_symbol"] == [] and data["by_target"] == []
    assert data["now"][running] == 1 and sum(data["now"].values()) == 1
    # 24h is the default.
    day = (await client.get("/stats/overview")).json()["data"]
    assert day["window"] == "24h" and len(day["buckets"]) == 24
    assert day["buckets"][-1]["counts"] == {running: 1, "stopped": 1}


async def test_an_unknown_window_is_a_422_naming_it(client: httpx.AsyncClient) -> None:
    answer = await client.get("/stats/overview", params={"window": "30d"})
    assert answer.status_code == 422
    errors = answer.json()["data"]["errors"]
    assert [e["field"] for e in errors] == ["window"]
    assert "24h" in errors[0]["message"] and "7d" in errors[0]["message"]


async def test_the_openapi_document_shows_an_example() -> None:
    from queue_manager.app import create_app
    from queue_manager.settings import Settings

    schema = create_app(Settings(_env_file=None)).openapi()
    route = schema["paths"]["/stats/overview"]["get"]
    assert {p["name"] for p in route["parameters"]} == {"window"}
    assert "examples" in route["parameters"][0]
