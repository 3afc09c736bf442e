"""docs/api.md: idempotent start, listing with filters and cursor, the envelope everywhere."""

from __future__ import annotations

from typing import Any

import httpx

from queue_manager.adapters.sqlite_store import SQLiteStore


async def test_idempotency_key_returns_the_same_queue_and_launches_nothing_new(
    client: httpx.AsyncClient, single: dict[str, Any]
) -> None:
    headers = {"Idempotency-Key": "retry-42"}
    first = await client.post("/queues/start", json=single, headers=headers)
    second = await client.post("/queues/start", json=single, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json()["data"]["queue_id"] == second.json()["data"]["queue_id"]
    listing = (await client.get("/queues")).json()
    assert len(listing["data"]) == 1
    metrics = (await client.get("/metrics")).text
    assert "queue_manager_queues_started_total 1.0" in metrics


async def test_list_is_newest_first_with_filters_and_cursor(
    client: httpx.AsyncClient, single: dict[str, Any]
) -> None:
    ids = []
    for symbol in ("BTCUSDT", "ETHUSDT", "BTCUSDT", "SOLUSDT", "BTCUSDT"):
        answer = await client.post("/queues/start", json={**single, "symbol": symbol})
        ids.append(answer.json()["data"]["queue_id"])
    page = (await client.get("/queues?limit=2")).json()
    assert page["status"] == "success"
    assert page["message"] == "Queues fetched"  # the platform's clients match on it
    assert [q["id"] for q in page["data"]] == ids[::-1][:2]
    seen = [q["id"] for q in page["data"]]
    while page["next_cursor"]:
        page = (await client.get(f"/queues?limit=2&cursor={page['next_cursor']}")).json()
        seen += [q["id"] for q in page["data"]]
    assert seen == ids[::-1]
    btc = (await client.get("/queues?symbol=btcusdt")).json()["data"]
    assert [q["id"] for q in btc] == [ids[4], ids[2], ids[0]]
    assert (await client.get("/queues?status=finished&symbol=ETHUSDT")).json()["data"] == []


async def test_queue_state_has_the_platform_field_names(
    client: httpx.AsyncClient, historical: dict[str, Any]
) -> None:
    queue_id = (await client.post("/queues/start", json=historical)).json()["data"]["queue_id"]
    answer = (await client.get(f"/queues/{queue_id}")).json()
    assert answer["message"] == "Queue status"
    queue = answer["data"]
    for name in (
        "id",
        "symbol",
        "type",
        "status",
        "loader_type",
        "start_time",
        "end_time",
        "last_loaded_timestamp",
        "records_written",
        "error_message",
        "kafka_topic",
        "started_at",
        "finished_at",
        "created_at",
        "updated_at",
        "steps",
    ):
        assert name in queue
    for name in (
        "index",
        "target",
        "type",
        "params",
        "depends_on",
        "status",
        "job_name",
        "telemetry_id",
        "kafka_topic",
        "collection_name",
        "records_written",
        "last_loaded_timestamp",
        "started_at",
        "finished_at",
        "error_message",
        "attempts",
    ):
        assert name in queue["steps"][0]
    await client.post(f"/queues/stop?queue_id={queue_id}&force=true")


async def test_health_reports_each_dependency(client: httpx.AsyncClient) -> None:
    ready = (await client.get("/health/ready")).json()
    assert ready["message"] == "All systems operational"
    assert set(ready["data"]) == {"store", "bus", "launcher"}
    assert (await client.get("/health/live")).status_code == 200
    assert (await client.get("/health/startup")).status_code == 200


async def test_store_down_makes_ready_503_and_the_api_answer_503(
    client: httpx.AsyncClient, single: dict[str, Any]
) -> None:
    store: SQLiteStore = client.adapters.store  # type: ignore[attr-defined]
    await store.close()
    try:
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["data"]["store"]["ok"] is False
        assert "store" in ready.json()["message"]
        answer = await client.post("/queues/start", json=single)
        assert answer.status_code == 503
        assert answer.json()["status"] == "error"
    finally:
        await store.open()
    assert (await client.get("/health/ready")).status_code == 200
