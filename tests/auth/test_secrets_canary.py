"""No secret ever leaves the process that holds it: canary values for every secret setting and
API token, and a grep of everything an end-to-end run emitted (docs/security.md)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson

from tests.support.service import Service, wait_for

CANARIES = {
    "KAFKA_PASSWORD": "canary-kafka-password-5d1e",
    "ARANGO_PASSWORD": "canary-arango-password-77b2",
    "WORKER_TOKEN_SECRET": "canary-worker-token-secret-0c4a",
    "AUTH_SESSION_SECRET": "canary-session-secret-9e61",
}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _environ(pid: int) -> bytes:
    return Path(f"/proc/{pid}/environ").read_bytes()


def test_no_secret_appears_in_anything_the_service_emits(
    secured: Callable[..., Service], admin_token: str
) -> None:
    service = secured(
        STORE_BACKEND="sqlite",
        BUS_BACKEND="memory",
        KAFKA_USER="queue-manager",
        ARANGO_URL="http://arangodb.invalid:8529",
        LOCAL_WORKER_ARGS="--duration 30",
        METRICS_AUTH="true",
        **CANARIES,
    )
    emitted: list[bytes] = []

    def keep(answer: httpx.Response) -> httpx.Response:
        emitted.append(answer.content + json.dumps(dict(answer.headers)).encode())
        return answer

    made = keep(service.post("/auth/tokens", json={"name": "ops", "role": "operator"}))
    ops = made.json()["data"]["token"]
    secrets = {**CANARIES, "admin token": admin_token, "ops token": ops}
    # The one place a token may appear is the answer that creates it, once.
    emitted.pop()
    as_ops = {"Authorization": f"Bearer {ops}"}
    start = keep(service.post("/queues/start", json=_streaming(), headers=as_ops))
    queue_id = start.json()["data"]["queue_id"]
    running = wait_for(
        lambda: (q := service.queue(queue_id))["steps"][0]["status"] == "loading" and q, 20
    )
    record = orjson.loads(
        (service.data_dir / "jobs" / f"{running['steps'][0]['job_name']}.json").read_bytes()
    )
    worker_environ = _environ(int(record["pid"]))
    assert b"QM_WORKER_TOKEN=" in worker_environ  # its own token to report over HTTP
    # A local job's credentials are the service's own, as a Kubernetes Job's come from the
    # Secret (docs/operations.md): in its process environment only, never on disk.
    job_credentials = {"KAFKA_PASSWORD", "ARANGO_PASSWORD"}
    for name in job_credentials:
        assert f"{name}={CANARIES[name]}".encode() in worker_environ

    login = keep(httpx.post(f"{service.url}/auth/login", json={"token": ops}))
    assert login.status_code == 200
    for path in (
        "/queues",
        f"/queues/{queue_id}",
        "/auth/me",
        "/auth/tokens",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/health/ready",
    ):
        keep(service.get(path))
    keep(httpx.get(f"{service.url}/queues", headers={"Authorization": f"Bearer {ops}x"}))
    keep(httpx.post(f"{service.url}/auth/login", json={"token": admin_token + "x"}))
    keep(service.post("/queues/stop", params={"queue_id": queue_id, "force": "true"}))
    service.wait_status(queue_id, {"stopped"}, 20)
    service.stop()

    places = {
        "API answers": b"\n".join(emitted),
        "worker environment": worker_environ,
        **_files(service.data_dir),
    }
    found = [
        f"{name} in {place}"
        for place, content in places.items()
        for name, value in secrets.items()
        if value.encode() in content
        and not (place == "worker environment" and name in job_credentials)
    ]
    assert found == []
    assert b"ops" in places["API answers"]  # the grep looked at real content


def _streaming() -> dict[str, object]:
    return {"symbol": "BTCUSDT", "type": "ws", "time_range": "2024-01-01:2024-01-01"}
