"""Every route and the WebSocket, against every kind of caller: exactly the code the role table
(docs/security.md) says, and a refused mutation changes nothing and launches nothing."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import Route, WebSocketRoute
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from queue_manager.app import create_app
from queue_manager.domain.identity import new_token, token_hash
from queue_manager.settings import Settings
from tests.support.service import Service, wait_for

PUBLIC, WORKER, VIEWER, OPERATOR, ADMIN = "public", "worker", "viewer", "operator", "admin"
RANK = {VIEWER: 0, OPERATOR: 1, ADMIN: 2}

#: the role table; a route missing here fails test_every_route_has_a_row
EXPECTED = {
    ("POST", "/queues/start"): OPERATOR,
    ("POST", "/queues/stop"): OPERATOR,
    ("POST", "/queues/{queue_id}/retry"): OPERATOR,
    ("POST", "/queues/{queue_id}/resubmit"): OPERATOR,
    ("GET", "/queues"): VIEWER,
    ("GET", "/queues/{queue_id}"): VIEWER,
    ("GET", "/queues/{queue_id}/steps/{index}/logs"): VIEWER,
    ("GET", "/queues/{queue_id}/events"): VIEWER,
    ("POST", "/queues/backfill"): OPERATOR,
    ("POST", "/schedules"): OPERATOR,
    ("GET", "/schedules"): VIEWER,
    ("GET", "/schedules/{name}"): VIEWER,
    ("PATCH", "/schedules/{name}"): OPERATOR,
    ("POST", "/schedules/{name}/pause"): OPERATOR,
    ("POST", "/schedules/{name}/resume"): OPERATOR,
    ("DELETE", "/schedules/{name}"): OPERATOR,
    ("GET", "/schedules/{name}/runs"): VIEWER,
    ("GET", "/rate-limits"): VIEWER,
    ("POST", "/queues/plan"): VIEWER,
    ("GET", "/collections"): VIEWER,
    ("GET", "/collections/{name}"): VIEWER,
    ("GET", "/coverage"): VIEWER,
    ("GET", "/coverage/summary"): VIEWER,
    ("POST", "/coverage/fill"): OPERATOR,
    ("GET", "/coverage/expected-gaps"): VIEWER,
    ("PUT", "/coverage/expected-gaps/{name}"): OPERATOR,
    ("DELETE", "/coverage/expected-gaps/{name}"): OPERATOR,
    ("GET", "/stats/overview"): VIEWER,
    ("GET", "/auth/me"): VIEWER,
    ("GET", "/auth/tokens"): ADMIN,
    ("POST", "/auth/tokens"): ADMIN,
    ("DELETE", "/auth/tokens/{name}"): ADMIN,
    ("POST", "/auth/logout"): PUBLIC,
    ("GET", "/health/live"): PUBLIC,
    ("GET", "/health/startup"): PUBLIC,
    ("GET", "/health/ready"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/"): PUBLIC,  # redirects to the dashboard, whose files are public too
    ("GET", "/ui/config.json"): PUBLIC,
    ("POST", "/internal/telemetry"): WORKER,
    ("GET", "/internal/commands"): WORKER,
    ("WS", "/ws/topic"): VIEWER,
}
RUNNING_QUEUE_CONFLICTS = {
    ("POST", "/queues/{queue_id}/retry"),
    ("POST", "/queues/{queue_id}/resubmit"),
}
#: no such collection in this world: past the guard, a 404 (the guard answers first)
NOT_FOUND_PAST_GUARD = {("GET", "/collections/{name}")}
#: a read of the ledger: its symbols, type and days
COVERAGE_QUERY = {
    "symbol": "BTCUSDT",
    "type": "api_candles_5m",
    "from": "2024-01-01",
    "to": "2024-01-31",
}
#: trades a credential for a cookie, so its code follows the credential: tests/auth/test_sessions.py
LOGIN = ("POST", "/auth/login")

BAD_CALLERS = ("no credential", "garbage", "expired", "revoked")
GOOD_CALLERS = (VIEWER, OPERATOR, ADMIN)


def _flatten(routes: list[Any]) -> Iterator[Any]:
    for route in routes:
        # FastAPI >= 0.16x keeps included routers as one entry holding the original router.
        inner = getattr(route, "original_router", None)
        yield from _flatten(inner.routes) if inner is not None else [route]


def test_every_route_has_a_row(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, _env_file=None))
    served = set()
    for route in _flatten(app.routes):
        if isinstance(route, WebSocketRoute):
            served.add(("WS", route.path))
        elif isinstance(route, APIRoute | Route):
            served |= {(m, route.path) for m in (route.methods or ()) if m != "HEAD"}
    assert served == {*EXPECTED, LOGIN}


@dataclass
class World:
    service: Service
    tokens: dict[str, str | None]
    running_queue: str
    #: never stopped: retrying or resubmitting it is a conflict once past the role guard
    busy_queue: str
    counter: Iterator[int]

    def headers(self, caller: str) -> dict[str, str]:
        token = self.tokens[caller]
        return {"Authorization": f"Bearer {token}"} if token else {}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("matrix")
    root = new_token()
    (home / "tokens").write_text(f"root admin {token_hash(root)}\n")
    env = {
        "AUTH_TOKENS_FILE": str(home / "tokens"),
        "WS_HEARTBEAT_SECONDS": "0.5",
        "AUTH_REFRESH_SECONDS": "0.5",
        "LOCAL_WORKER_ARGS": "--duration 60",
    }
    service = Service(home / "svc", env=env, token=root).start()
    tokens: dict[str, str | None] = {"no credential": None, "garbage": "qm_" + "x" * 43}
    for role in GOOD_CALLERS:
        tokens[role] = _create(service, f"matrix-{role}", role)
    tokens["revoked"] = _create(service, "matrix-revoked", VIEWER)
    assert service.delete("/auth/tokens/matrix-revoked").status_code == 200
    tokens["expired"] = _create(service, "matrix-expired", ADMIN, expires="1m")
    streaming = {"symbol": "BTCUSDT", "type": "ws", "time_range": _today()}
    running = service.start_queue(streaming)
    busy = service.start_queue(streaming)
    # Its worker runs (and writes its log) before anyone reads it.
    wait_for(lambda: service.queue(running)["steps"][0]["status"] == "loading", 20)
    assert service.post("/schedules", json=_schedule("matrix")).status_code == 201
    try:
        yield World(service, tokens, running, busy, itertools.count())
    finally:
        service.stop()
        service.kill_workers()


def _today() -> str:
    day = datetime.now(UTC).date().isoformat()
    return f"{day}:{day}"


def _schedule(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "cron": "0 0 1 1 *",
        "symbols": ["BTCUSDT"],
        "template": {"type": "api", "window": "1d"},
    }


def _create(service: Service, name: str, role: str, expires: str | None = None) -> str:
    answer = service.post("/auth/tokens", json={"name": name, "role": role, "expires": expires})
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["data"]["token"]
    return token


def _expire(world: World) -> None:
    """The expired caller's token runs out: its expiry moves into the past in the store file,
    as time passing would."""
    past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    with sqlite3.connect(world.service.data_dir / "queue-manager.db") as db:
        db.execute("UPDATE api_tokens SET expires_at = ? WHERE name = 'matrix-expired'", (past,))


def _call(world: World, route: tuple[str, str], caller: str) -> int:
    """One valid request for the route, sent with exactly this caller's credential."""
    method, path = route
    url = world.service.url
    queue_id = world.running_queue
    n = next(world.counter)
    kw: dict[str, Any] = {}
    if route == ("POST", "/queues/start"):
        kw["json"] = {"symbol": "ETHUSDT", "type": "api", "time_range": "2024-01-01:2024-01-01"}
    elif route == ("POST", "/queues/stop"):
        kw["params"] = {"queue_id": queue_id}
    elif route in RUNNING_QUEUE_CONFLICTS:
        path = route[1].replace("{queue_id}", world.busy_queue)
    elif route in (("GET", "/queues/{queue_id}"), ("GET", "/queues/{queue_id}/events")):
        path = route[1].replace("{queue_id}", queue_id)
    elif route == ("GET", "/queues/{queue_id}/steps/{index}/logs"):
        path = f"/queues/{queue_id}/steps/0/logs"
        kw["params"] = {"tail": 5}
    elif route == ("POST", "/auth/tokens"):
        kw["json"] = {"name": f"made-{n}", "role": VIEWER}
    elif route == ("DELETE", "/auth/tokens/{name}"):
        path = f"/auth/tokens/{_throwaway(world, n)}"
    elif route == ("POST", "/internal/telemetry"):
        kw["json"] = {"event": "loading", "queue_id": queue_id, "records_written": 1}
    elif route == ("GET", "/internal/commands"):
        kw["params"] = {"queue_id": queue_id}
    elif route == ("GET", "/"):
        kw["follow_redirects"] = True
    elif route == ("POST", "/queues/backfill"):
        kw["json"] = {
            "symbols": ["ETHUSDT"],
            "type": "api",
            "time_range": "2024-01-01:2024-01-01",
            "chunk": "day",
        }
    elif route == ("POST", "/schedules"):
        kw["json"] = _schedule(f"made-{n}")
    elif route == ("DELETE", "/schedules/{name}"):
        name = f"throwaway-{n}"
        made = world.service.post("/schedules", json=_schedule(name))
        assert made.status_code == 201, made.text
        path = f"/schedules/{name}"
    elif route == ("PATCH", "/schedules/{name}"):
        path = "/schedules/matrix"
        kw["json"] = {"catchup": "none"}
    elif "{name}" in path and path.startswith("/schedules"):
        path = path.replace("{name}", "matrix")
    elif route == ("POST", "/queues/plan"):
        kw["json"] = {"symbol": "ETHUSDT", "type": "api", "time_range": "2024-01-01:2024-01-01"}
    elif route == ("GET", "/collections/{name}"):
        path = "/collections/btc_candles_5m_2024_06"
    elif route in (("GET", "/coverage"), ("GET", "/coverage/summary")):
        kw["params"] = COVERAGE_QUERY
    elif route == ("POST", "/coverage/fill"):
        kw["json"] = {
            "symbols": ["BTCUSDT"],
            "types": ["api_candles_5m"],
            "time_range": "2024-01-01:2024-01-31",
            "dry_run": True,
        }
    elif route == ("PUT", "/coverage/expected-gaps/{name}"):
        path = f"/coverage/expected-gaps/made-{n}"
        kw["json"] = {"symbol": "BTCUSDT", "from": "2024-01-02", "to": "2024-01-02"}
    elif route == ("DELETE", "/coverage/expected-gaps/{name}"):
        name = f"throwaway-{n}"
        body = {"symbol": "BTCUSDT", "from": "2024-01-03", "to": "2024-01-03"}
        made = world.service.put(f"/coverage/expected-gaps/{name}", json=body)
        assert made.status_code == 201, made.text
        path = f"/coverage/expected-gaps/{name}"
    answer = httpx.request(method, url + path, headers=world.headers(caller), timeout=10, **kw)
    return answer.status_code


def _throwaway(world: World, n: int) -> str:
    name = f"throwaway-{n}"
    made = world.service.post("/auth/tokens", json={"name": name, "role": VIEWER})
    assert made.status_code == 200, made.text
    return name


def _socket(world: World, caller: str) -> int:
    """200 when the socket is served (a heartbeat arrives), else the close code."""
    url = world.service.url.replace("http://", "ws://") + "/ws/topic"
    with connect(url, additional_headers=world.headers(caller), open_timeout=5) as socket:
        try:
            socket.recv(timeout=5)
        except ConnectionClosed as closed:
            assert closed.rcvd is not None
            return closed.rcvd.code
    return 200


def _expected(route: tuple[str, str], caller: str) -> set[int]:
    needed = EXPECTED[route]
    if needed == PUBLIC:
        return {200}
    if needed == WORKER:
        return {401}  # API credentials of any role are not worker tokens
    ws = route[0] == "WS"
    if caller in BAD_CALLERS:
        return {4401 if ws else 401}
    if RANK[caller] < RANK[needed]:
        return {4403 if ws else 403}
    if route in RUNNING_QUEUE_CONFLICTS:
        return {409}  # past the guard: the queue is running, so it cannot be run again yet
    if route in (("POST", "/schedules"), ("PUT", "/coverage/expected-gaps/{name}")):
        return {201}
    if route in NOT_FOUND_PAST_GUARD:
        return {404}
    return {200}


def _snapshot(world: World) -> tuple[Any, ...]:
    queues = world.service.get("/queues").json()["data"]
    tokens = world.service.get("/auth/tokens").json()["data"]
    jobs = sorted(p.name for p in (world.service.data_dir / "jobs").glob("*.json"))
    schedules = world.service.get("/schedules").json()["data"]
    return (
        sorted(
            (s["name"], s["paused"], s["catchup"])
            for s in schedules
            if not s["name"].startswith("throwaway-")
        ),
        [(q["id"], q["status"], q["stop_requested_at"]) for q in queues],
        sorted(t["name"] for t in tokens if not t["name"].startswith("throwaway-")),
        jobs,
    )


def test_each_caller_gets_exactly_the_code_of_its_role(world: World) -> None:
    _expire(world)
    wrong = []
    # Refused callers first: what they tried must leave no trace before anyone may act.
    for caller in (*BAD_CALLERS, *GOOD_CALLERS):
        before = _snapshot(world)
        for route in EXPECTED:
            code = _socket(world, caller) if route[0] == "WS" else _call(world, route, caller)
            if code not in _expected(route, caller):
                wrong.append(f"{route} as {caller}: {code}, expected {_expected(route, caller)}")
        if caller in (*BAD_CALLERS, VIEWER):
            assert _snapshot(world) == before, f"a refused mutation by {caller} changed state"
    assert wrong == []


def test_refusals_name_the_role_needed(world: World) -> None:
    stop = httpx.post(
        world.service.url + "/queues/stop",
        params={"queue_id": world.running_queue},
        headers=world.headers(VIEWER),
    )
    assert stop.status_code == 403
    assert stop.json()["message"] == "operator role required to stop a queue"
    anonymous = httpx.get(world.service.url + "/queues")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert anonymous.json()["status"] == "error"
