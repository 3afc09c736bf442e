"""Live updates (docs/api.md, "Live updates"): encoded once where they are made, as the ASCII
JSON text every client is sent; relayed over the bus and fanned out as those bytes; each one
carrying the queue's `started_at` and `finished_at`, as `GET /queues/{id}` has them."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from starlette.testclient import TestClient, WebSocketTestSession

from queue_manager.adapters.memory_bus import MemoryBus
from queue_manager.api.worker_auth import WorkerTokens
from queue_manager.app import create_app
from queue_manager.services.live import (
    UpdateKey,
    UpdateRelay,
    encode_update,
    pack,
    unpack,
    update_key,
)
from queue_manager.settings import Settings
from tests.support.waiting import wait_until

SECRET = "api-live-updates-worker-secret"

UPDATE: dict[str, Any] = {
    "event": "step.updated",
    "queue_id": "q1",
    "step": 2,
    "status": "loading",
    "records_written": 7,
    "updated_at": "2026-12-02T15:58:27.268920+00:00",
    "started_at": "2026-12-02T15:58:20.000000+00:00",
    "finished_at": None,
    "text": "Queue q1 step 2 loader-producer → loading (7 records)",
}


def test_an_update_is_encoded_as_ascii_json_with_the_same_value() -> None:
    for update in (
        UPDATE,
        {**UPDATE, "error_message": "é, 😀, ∞, \u2028 and a newline\n", "text": "→ → →"},
        {**UPDATE, "text": "plain"},
    ):
        encoded = encode_update(update)
        assert encoded.isascii()
        assert orjson.loads(encoded) == update == json.loads(encoded)
        assert b"\n" not in encoded  # the bus framing relies on it
    assert b"\\u2192" in encode_update(UPDATE)


class Recorder:
    """Stands in for the hub: what the relay hands over, as it is handed over."""

    def __init__(self) -> None:
        self.got: list[tuple[UpdateKey, bytes]] = []
        self._arrived = asyncio.Event()

    def publish_encoded(self, key: UpdateKey, payload: bytes) -> None:
        self.got.append((key, payload))
        self._arrived.set()

    async def until(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.got) < count:
                self._arrived.clear()
                await self._arrived.wait()


async def test_the_relay_hands_every_replica_the_bytes_it_encoded_once() -> None:
    bus, hub = MemoryBus(), Recorder()
    await bus.start()
    relay = UpdateRelay(bus, hub)
    updates = [UPDATE, {**UPDATE, "event": "queue.updated", "step": None}, {**UPDATE, "step": 3}]
    sent: list[bytes] = []
    original = bus.send_updates

    async def spy(value: bytes) -> None:
        sent.append(value)
        await original(value)

    bus.send_updates = spy  # type: ignore[method-assign]
    loops = [asyncio.create_task(relay.send_loop()), asyncio.create_task(relay.receive_loop())]
    try:
        for update in updates:
            relay.publish(update)
        await hub.until(len(updates))
        assert hub.got == [(update_key(u), encode_update(u)) for u in updates]
        # what crosses the bus is a JSON array whose objects are the updates: a replica of an
        # earlier release, which decodes it, reads the same updates
        (message,) = sent
        assert [v for v in orjson.loads(message) if isinstance(v, dict)] == updates
        # and a message of an earlier release (a plain array of updates) is still relayed
        hub.got.clear()
        await bus.send_updates(orjson.dumps(updates))
        await hub.until(len(updates))
        assert hub.got == [(update_key(u), encode_update(u)) for u in updates]
    finally:
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        await bus.stop()


def test_a_bus_message_splits_into_its_updates_without_decoding_them() -> None:
    entries = [(update_key(u), encode_update(u)) for u in (UPDATE, {**UPDATE, "step": 0})]
    assert unpack(pack(entries)) == entries
    assert unpack(b"not json") == [] and unpack(b"{}") == []
    # keys that cannot key the hub's log: read as a plain array instead, nothing lost
    bad = b'[[[["x"],"q1",2]],\n' + encode_update(UPDATE) + b"]"
    assert unpack(bad) == [(update_key(UPDATE), encode_update(UPDATE))]


def _frames(socket: WebSocketTestSession, seen: list[dict[str, Any]], until: Any) -> None:
    """Read frames (heartbeats every 0.2 s keep this moving) until `until(seen)`."""
    deadline = time.monotonic() + 20
    while not until(seen):
        assert time.monotonic() < deadline, seen[-5:]
        text = socket.receive_text()
        assert text.isascii(), text
        seen.extend(u for u in orjson.loads(text) if u.get("event") != "heartbeat")


def at(iso: str | None) -> datetime | None:
    """The same instant whichever way it is written (`Z` in REST, `+00:00` in updates)."""
    return None if iso is None else datetime.fromisoformat(iso)


def _wait(http: TestClient, queue_id: str, check: Any) -> dict[str, Any]:
    def queue() -> dict[str, Any] | None:
        data: dict[str, Any] = http.get(f"/queues/{queue_id}").json()["data"]
        return data if check(data) else None

    return wait_until(queue, 20, what=f"queue {queue_id} to pass {check}", every=0.05)


def test_every_update_carries_the_queues_started_at_and_finished_at(
    tmp_path: Path, single: dict[str, Any]
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        ws_heartbeat_seconds=0.2,
        local_worker_command="sh -c 'exec sleep 30'",  # reports nothing: the test does
        worker_token_secret=SECRET,
        launch_grace_seconds=600,
        _env_file=None,
    )
    with (
        TestClient(create_app(settings)) as http,
        http.websocket_connect("/ws/topic?batch=1") as socket,
    ):
        queue_id = http.post("/queues/start", json=single).json()["data"]["queue_id"]
        step = _wait(http, queue_id, lambda q: q["steps"][0]["job_name"])["steps"][0]
        producer = step["telemetry_id"]
        seen: list[dict[str, Any]] = []
        # The hub conflates: read the launch's updates before a report can replace them.
        _frames(socket, seen, lambda s: any(u["queue_id"] == queue_id for u in s))
        answer = http.post(
            "/internal/telemetry",
            json={"event": "loading", "queue_id": queue_id, "producer": producer,
                  "records_written": 5, "finished": False},
            headers={"Authorization": f"Bearer {WorkerTokens(SECRET.encode()).token(producer)}"},
        )  # fmt: skip
        assert answer.status_code == 202, answer.text

        def reported(s: list[dict[str, Any]]) -> bool:
            return any(u["event"] == "queue.updated" and u["records_written"] == 5 for u in s)

        def stopped(s: list[dict[str, Any]]) -> bool:
            return any(u["event"] == "queue.updated" and u["status"] == "stopped" for u in s)

        _frames(socket, seen, reported)
        loading = _wait(http, queue_id, lambda q: q["started_at"])
        answer = http.post("/queues/stop", params={"queue_id": queue_id, "force": "true"})
        assert answer.status_code == 200, answer.text
        _frames(socket, seen, stopped)
        ended = _wait(http, queue_id, lambda q: q["status"] == "stopped")
        socket.close()

    mine = [u for u in seen if u["queue_id"] == queue_id]
    assert {u["event"] for u in mine} == {"queue.updated", "step.updated"}
    for update in mine:
        assert "started_at" in update and "finished_at" in update, update
    # launched, not started yet: no started_at; the worker's first report: the step's time
    assert mine[0]["started_at"] is None and mine[0]["finished_at"] is None
    first = next(u for u in mine if u["event"] == "queue.updated" and u["records_written"] == 5)
    assert first["status"] == "loading" and first["finished_at"] is None
    assert at(first["started_at"]) == at(loading["started_at"]) is not None
    final = [u for u in mine if u["event"] == "queue.updated"][-1]
    assert final["status"] == "stopped"
    assert at(final["started_at"]) == at(ended["started_at"]) == at(loading["started_at"])
    assert at(final["finished_at"]) == at(ended["finished_at"]) is not None
    assert final["text"] == f"Queue {queue_id} → stopped (5 records)"
