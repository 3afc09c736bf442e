"""Issue 27, "no 500 on client input" (docs/api.md, docs/schedules.md): inputs that used to end in
a 500, a 400 or a misleading success get a 4xx envelope naming the field — or, where the request
makes sense, work."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from queue_manager.api.worker_auth import WorkerTokens
from queue_manager.app import build_adapters, create_app
from queue_manager.settings import Settings

SCHEDULE = {
    "name": "nightly",
    "cron": "15 0 * * *",
    "symbols": ["BTCUSDT"],
    "template": {"type": "api_candles_5m", "window": "1d"},
}
BACKFILL = {"symbols": ["BTCUSDT"], "type": "api", "chunk": "day"}
ALLOWED = "registry.example/loader:2.0"


def errors(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["status"] == "error"
    return {e["field"]: e["message"] for e in body["data"]["errors"]}


def pipeline(image: str, **extra: Any) -> dict[str, Any]:
    step = {"target": "loader-producer", "type": "api_candles_5m", "image": image}
    return {"requests": [step], **extra}


async def queue_count(client: httpx.AsyncClient) -> int:
    return len((await client.get("/queues")).json()["data"])


@pytest.fixture
async def allowing(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The app with ALLOWED_IMAGES set (the `client` fixture has it empty)."""
    settings = Settings(
        data_dir=tmp_path,
        local_worker_args="--duration 1",
        allowed_images=[ALLOWED, "registry.example/graph:1"],
        _env_file=None,
    )
    adapters = build_adapters(settings, WorkerTokens.from_file(tmp_path / "worker-token.secret"))
    app = create_app(settings, adapters)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://qm") as http:
            yield http


# -- 7: 500s --------------------------------------------------------------------------------


@pytest.mark.parametrize("cron", ["0 0 31 2 *", "0 0 30 2 *", "0 12 31 4,6,9,11 *"])
async def test_a_cron_that_never_fires_is_a_422_on_create_and_on_patch(
    client: httpx.AsyncClient, cron: str
) -> None:
    assert (
        "never fires"
        in errors(await client.post("/schedules", json={**SCHEDULE, "cron": cron}))["cron"]
    )
    assert (await client.post("/schedules", json=SCHEDULE)).status_code == 201
    assert (
        "never fires"
        in errors(await client.patch("/schedules/nightly", json={"cron": cron}))["cron"]
    )
    kept = (await client.get("/schedules/nightly")).json()["data"]
    assert kept["cron"] == SCHEDULE["cron"]
    # Leap days do come round.
    leap = await client.patch("/schedules/nightly", json={"cron": "0 0 29 2 *"})
    assert leap.status_code == 200, leap.text


@pytest.mark.parametrize(("chunk", "children"), [("day", 7), ("week", 2)])
async def test_a_backfill_up_to_the_last_representable_day_is_cut(
    client: httpx.AsyncClient, chunk: str, children: int
) -> None:
    body = {**BACKFILL, "chunk": chunk, "time_range": "9999-12-25:9999-12-31"}
    answer = await client.post("/queues/backfill", json=body)
    assert answer.status_code == 200, answer.text
    parent = answer.json()["data"]["queue_id"]
    listed = (await client.get(f"/queues?parent={parent}")).json()["data"]
    assert len(listed) == children
    assert max(q["time_range"] for q in listed).endswith(":9999-12-31")
    await client.post(f"/queues/stop?queue_id={parent}&force=true")


@pytest.mark.parametrize("time_range", ["9999-12-31:9999-12-31", "0001-01-01:0001-01-02"])
async def test_a_queue_at_either_end_of_the_calendar_starts_and_stops(
    client: httpx.AsyncClient, time_range: str
) -> None:
    """Its coverage cells are computed as it is stored: the day after the last date a date can
    hold was an overflow, a 500 (found by the stateful contract test)."""
    body = {"symbol": "SOLFDUSD", "type": "api", "time_range": time_range}
    answer = await client.post("/queues/start", json=body)
    assert answer.status_code == 200, answer.text
    queue_id = answer.json()["data"]["queue_id"]
    stopped = await client.post(f"/queues/stop?queue_id={queue_id}&force=true")
    assert stopped.status_code == 200, stopped.text


async def test_a_backfill_of_centuries_by_day_is_refused_at_once(
    client: httpx.AsyncClient,
) -> None:
    body = {**BACKFILL, "time_range": "0001-01-01:9999-12-31"}
    assert "more than 2000" in errors(await client.post("/queues/backfill", json=body))["chunk"]


async def test_resubmitting_a_stopped_backfill_starts_the_same_backfill_again(
    client: httpx.AsyncClient,
) -> None:
    body = {**BACKFILL, "symbols": ["BTCUSDT", "ETHUSDT"], "time_range": "2024-01-01:2024-01-03"}
    first = (await client.post("/queues/backfill", json=body)).json()["data"]["queue_id"]
    await client.post(f"/queues/stop?queue_id={first}&force=true")

    answer = await client.post(f"/queues/{first}/resubmit")

    assert answer.status_code == 200, answer.text
    again = answer.json()["data"]
    assert again["resubmitted_from"] == first and again["queue_id"] != first
    parent = (await client.get(f"/queues/{again['queue_id']}")).json()["data"]
    assert parent["resubmitted_from"] == first
    assert parent["backfill"]["children"] == 6
    assert parent["backfill"]["symbols"] == ["BTCUSDT", "ETHUSDT"]
    children = (await client.get(f"/queues?parent={again['queue_id']}")).json()["data"]
    assert len(children) == 6
    await client.post(f"/queues/stop?queue_id={again['queue_id']}&force=true")


# -- 8: images outside ALLOWED_IMAGES -------------------------------------------------------


async def test_an_image_with_an_empty_allow_list_is_a_422_at_submission(
    client: httpx.AsyncClient,
) -> None:
    body = {"symbol": "BTCUSDT", "time_range": "2024-01-01:2024-01-02", **pipeline("evil:1")}
    message = errors(await client.post("/queues/start", json=body))["requests.0.image"]
    assert "no images are allowed" in message
    assert await queue_count(client) == 0


async def test_an_image_outside_the_allow_list_is_a_422_listing_the_allowed_ones(
    allowing: httpx.AsyncClient,
) -> None:
    steps = [
        {"target": "loader-producer", "type": "api_trades", "image": ALLOWED},
        {"target": "loader-producer", "type": "api_candles_5m", "image": "evil:1"},
    ]
    body = {"symbol": "BTCUSDT", "time_range": "2024-01-01:2024-01-02", "requests": steps}
    found = errors(await allowing.post("/queues/start", json=body))
    assert list(found) == ["requests.1.image"]
    assert ALLOWED in found["requests.1.image"]
    assert "registry.example/graph:1" in found["requests.1.image"]
    assert await queue_count(allowing) == 0

    accepted = await allowing.post("/queues/start", json={**body, "requests": steps[:1]})
    assert accepted.status_code == 200, accepted.text
    await allowing.post(f"/queues/stop?queue_id={accepted.json()['data']['queue_id']}&force=true")


async def test_schedule_and_backfill_templates_are_held_to_the_allow_list(
    allowing: httpx.AsyncClient,
) -> None:
    template = pipeline("evil:1", window="1d")
    found = errors(await allowing.post("/schedules", json={**SCHEDULE, "template": template}))
    assert ALLOWED in found["template.requests.0.image"]
    made = await allowing.post("/schedules", json=SCHEDULE)
    assert made.status_code == 201, made.text
    found = errors(await allowing.patch("/schedules/nightly", json={"template": template}))
    assert "template.requests.0.image" in found
    assert (await allowing.get("/schedules/nightly")).json()["data"]["template"] == (
        SCHEDULE["template"]
    )

    backfill = {**pipeline("evil:1"), "symbols": ["BTCUSDT"], "chunk": "day"}
    backfill["time_range"] = "2024-01-01:2024-01-03"
    assert "requests.0.image" in errors(await allowing.post("/queues/backfill", json=backfill))
    assert await queue_count(allowing) == 0


# -- 10: smaller ones -----------------------------------------------------------------------


async def test_a_chunked_body_over_the_limit_is_a_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"symbol": "'
        for _ in range(10):
            yield b"A" * (1024 * 1024)
        yield b'"}'

    answer = await client.post(
        "/queues/start", content=chunks(), headers={"content-type": "application/json"}
    )
    assert answer.status_code == 413, answer.text
    assert answer.json()["status"] == "error"
    assert "larger than" in answer.json()["message"]


@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"),
    [
        ("POST", "/auth/login", {"token": "x", "colour": 1}, "token"),
        (
            "PATCH",
            "/schedules/nightly",
            {"colour": 1},
            "catchup, concurrency_policy, cron, starting_deadline_seconds, symbols, template, "
            "timezone",
        ),
        (
            "POST",
            "/queues/stop",
            {"queue_id": "x", "colour": 1},
            "force, queue_id",
        ),
        (
            "POST",
            "/queues/backfill",
            {**BACKFILL, "time_range": "2024-01-01:2024-01-03", "colour": 1},
            "chunk, max_parallel, microservices, pending_timeout, ping_timeout, priority, "
            "requests, retry, simulate, stall_after, symbol, symbols, time_range, timeout, type",
        ),
    ],
)
async def test_an_unknown_field_lists_the_fields_of_that_bodys_own_model(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any], allowed: str
) -> None:
    await client.post("/schedules", json=SCHEDULE)
    found = errors(await client.request(method, path, json=body))
    assert found["colour"] == f"unknown field; allowed fields: {allowed}"


def test_a_bad_websocket_parameter_closes_with_a_policy_code_naming_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, ws_heartbeat_seconds=0.2, _env_file=None)
    with TestClient(create_app(settings)) as http:
        for query, name in (("batch=maybe", "batch"), ("ack=perhaps", "ack")):
            with (
                http.websocket_connect(f"/ws/topic?{query}") as socket,
                pytest.raises(WebSocketDisconnect) as closed,
            ):
                socket.receive_text()
            assert closed.value.code == 1008
            assert name in closed.value.reason and "boolean" in closed.value.reason
        with http.websocket_connect("/ws/topic?batch=false&ack=0") as socket:
            assert socket.receive_json()["event"] == "heartbeat"
            socket.close()


def forged(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        forged({"created": "2024-01-01T00:00:00.000000Z", "id": "x"}),
        forged({"a": 1, "b": 2}),
        forged(["a", "b"]),
        forged(["2024-01-01T00:00:00.000000Z", "x", "y"]),
        forged(["2024-01-01T00:00:00.000000Z", ""]),
        forged("2024-01-01T00:00:00.000000Z"),
        forged(["2024-01-01T00:00:00.000000Z", "x"]) + "==",  # not as this API writes it
    ],
)
async def test_a_cursor_this_service_did_not_make_is_a_422(
    client: httpx.AsyncClient, single: dict[str, Any], cursor: str
) -> None:
    for symbol in ("BTCUSDT", "ETHUSDT"):
        await client.post("/queues/start", json={**single, "symbol": symbol})
    found = errors(await client.get("/queues", params={"limit": 1, "cursor": cursor}))
    assert "next_cursor" in found["cursor"]
    made = (await client.get("/queues?limit=1")).json()["next_cursor"]
    following = await client.get("/queues", params={"limit": 1, "cursor": made})
    assert following.status_code == 200 and len(following.json()["data"]) == 1


async def test_an_idempotency_key_of_a_start_is_not_replayed_for_a_backfill_or_another_body(
    client: httpx.AsyncClient, single: dict[str, Any]
) -> None:
    key = {"Idempotency-Key": "nightly-1"}
    first = await client.post("/queues/start", json=single, headers=key)
    queue_id = first.json()["data"]["queue_id"]

    backfill = {**BACKFILL, "time_range": "2024-01-01:2024-01-03"}
    found = errors(await client.post("/queues/backfill", json=backfill, headers=key))
    assert "start" in found["idempotency-key"] and queue_id in found["idempotency-key"]
    other = {**single, "symbol": "ETHUSDT"}
    found = errors(await client.post("/queues/start", json=other, headers=key))
    assert "another body" in found["idempotency-key"]
    again = await client.post("/queues/start", json=single, headers=key)
    assert again.json()["data"]["queue_id"] == queue_id
    assert await queue_count(client) == 1

    parent = await client.post("/queues/backfill", json=backfill, headers={"Idempotency-Key": "b"})
    replay = await client.post("/queues/backfill", json=backfill, headers={"Idempotency-Key": "b"})
    assert replay.json()["data"]["queue_id"] == parent.json()["data"]["queue_id"]
    assert replay.json()["message"] == "Backfill started: 3 child queues"
    found = errors(
        await client.post("/queues/start", json=single, headers={"Idempotency-Key": "b"})
    )
    assert "backfill" in found["idempotency-key"]


async def test_an_idempotency_key_with_spaces_or_non_ascii_is_refused_naming_it(
    client: httpx.AsyncClient, single: dict[str, Any]
) -> None:
    for key in ("two words", "clé".encode("latin-1")):
        for path, body in (("/queues/start", single), ("/queues/backfill", BACKFILL)):
            answer = await client.post(path, json=body, headers={"Idempotency-Key": key})
            assert answer.status_code == 422, (path, key, answer.text)
            assert "idempotency-key" in errors(answer), answer.text
    assert await queue_count(client) == 0
