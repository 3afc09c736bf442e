"""An attacker's view of every credential (issue 27): what each kind reaches, for how long, and
that logout, revocation and expiry really end it — a retry with the old credential is refused.

The kinds: an API token (per role), a browser session cookie (made from an API token or an OIDC
token), an OIDC bearer token (from the suite's own issuer, tests/support/oidc_issuer.py) and the
embedded worker credential `QM_WORKER_TOKEN`. The app runs in this process, served by uvicorn on
a thread, so that the tests can move the clock sessions and tokens are judged by; apps on one
SQLite file play replicas, and one started later plays a restart. docs/security.md has the
threat model these tests pin.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from queue_manager.adapters.oidc import LEEWAY_SECONDS
from queue_manager.api.sessions import COOKIE
from queue_manager.api.worker_auth import WorkerTokens
from queue_manager.app import create_app
from queue_manager.domain.identity import new_token, token_hash
from queue_manager.settings import Settings
from tests.support.app_server import AppServer
from tests.support.oidc_issuer import AUDIENCE, Issuer, running_issuer
from tests.support.service import wait_for
from tests.support.waiting import wait_until

#: AUTH_REFRESH_SECONDS here: how soon a change made on one replica is seen by another, and how
#: often an open socket's credential is checked again
REFRESH = 0.2
#: what "within AUTH_REFRESH_SECONDS" may take on a loaded machine
DEADLINE = 5.0
SESSION_SECONDS = 3600
SINGLE = {"symbol": "BTCUSDT", "type": "api", "time_range": "2024-01-01:2024-01-01"}

#: the probes: one request per kind of reach
READ, STOP, TOKENS, TELEMETRY, COMMANDS, SOCKET = (
    "read queues",
    "stop a queue",
    "manage tokens",
    "report telemetry",
    "poll commands",
    "follow live updates",
)
#: `stop` names a queue that does not exist: a caller allowed past the role guard gets a 404
#: and nothing changes
PAST_GUARD = 404
SERVED = 200  # the socket was accepted and sent a heartbeat

VIEWER_REACH = {READ: 200, STOP: 403, TOKENS: 403, TELEMETRY: 401, COMMANDS: 401, SOCKET: SERVED}
OPERATOR_REACH = {**VIEWER_REACH, STOP: PAST_GUARD}
ADMIN_REACH = {**OPERATOR_REACH, TOKENS: 200}
NOTHING = {READ: 401, STOP: 401, TOKENS: 401, TELEMETRY: 401, COMMANDS: 401, SOCKET: 4401}
#: a worker credential names one run of one step and ends with it (docs/security.md)
WORKER_ENDED_RUN = {**NOTHING, TELEMETRY: 403, COMMANDS: 403}


#: one client for every request (a new one per request costs more than the request); it keeps
#: no cookie, so each request carries exactly the credential the test gives it
HTTP = httpx.Client(timeout=10, cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])))


class Clock:
    """Real time plus an offset the test moves: the app's one clock (ports.Clock), which it
    judges expiry by."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def __call__(self) -> datetime:
        return self.now()

    async def sleep_until(self, when: datetime) -> None:
        left = (when - self.now()).total_seconds()
        while left > 0:  # an advance meanwhile is seen when the sleep ends
            await asyncio.sleep(left)
            left = (when - self.now()).total_seconds()

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


@dataclass(frozen=True)
class Credential:
    """What a client presents: a bearer token (header), or a session cookie with its CSRF token
    sent as the page it came from would (same origin, unless told otherwise)."""

    bearer: str | None = None
    cookie: str | None = None
    csrf: str = ""

    def headers(self, server: AppServer, origin: str | None = None) -> dict[str, str]:
        if self.bearer is not None:
            return {"Authorization": f"Bearer {self.bearer}"}
        if self.cookie is not None:
            return {
                "Cookie": f"{COOKIE}={self.cookie}",
                "Origin": origin or server.url,
                "X-CSRF-Token": self.csrf,
            }
        return {}

    def call(self, server: AppServer, method: str, path: str, **kw: object) -> httpx.Response:
        origin = kw.pop("origin", None)
        headers = self.headers(server, origin if isinstance(origin, str) else None)
        return HTTP.request(method, server.url + path, headers=headers, **kw)  # type: ignore[arg-type]

    def socket(self, server: AppServer, origin: str | None = None) -> ClientConnection:
        return connect(
            f"{server.ws_url}/ws/topic",
            additional_headers=self.headers(server, origin),
            open_timeout=5,
        )


NOBODY = Credential()


#: the close code of a socket that ended without the server's close frame
ABNORMAL = 1006


def said(socket: ClientConnection) -> int | None:
    """What the server has said on the socket so far, without waiting: SERVED if a frame (a
    heartbeat at least) has arrived, its close code if it closed the socket, None if nothing
    yet. One frame is read."""
    try:
        socket.recv(timeout=0)
    except TimeoutError:
        return None
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else ABNORMAL
    return SERVED


def close_code(socket: ClientConnection, within: float) -> int:
    """The close code the server sends within `within` seconds (the frames before it,
    heartbeats, are read past); WaitTimeout if it keeps serving."""

    def closed() -> int | None:
        while (answer := said(socket)) == SERVED:
            pass
        return answer

    return wait_until(closed, within, what="the server to close the socket")


def first_answer(socket: ClientConnection) -> int:
    """SERVED when the server serves the socket (a frame, a heartbeat at least, arrives), else
    the code it closed it with."""
    return wait_until(
        lambda: said(socket), 5, what="a first frame (a heartbeat) or a close on the socket"
    )


def serving(socket: ClientConnection) -> bool:
    """Whether the server serves the socket: a frame (a heartbeat at least) arrives."""
    return first_answer(socket) == SERVED


def socket_code(credential: Credential, server: AppServer, origin: str | None = None) -> int:
    """SERVED when the socket is served (a heartbeat arrives), else the close code."""
    with credential.socket(server, origin) as socket:
        return first_answer(socket)


@dataclass
class World:
    tmp: Path
    clock: Clock
    issuer: Issuer
    root: Credential  # the admin of AUTH_TOKENS_FILE
    servers: list[AppServer] = field(default_factory=list)

    def replica(self) -> AppServer:
        """A replica on the shared store; started later than the others, a restart."""
        settings = Settings(
            data_dir=self.tmp / "data",
            auth_tokens_file=self.tmp / "tokens",
            auth_session_secret="shared-by-the-replicas-of-this-test",  # type: ignore[arg-type]
            auth_session_seconds=SESSION_SECONDS,
            auth_refresh_seconds=REFRESH,
            ws_heartbeat_seconds=0.05,  # a served socket proves it at once
            oidc_issuer=self.issuer.url,
            oidc_audience=AUDIENCE,
            local_worker_command="true",  # a job that ends at once: no worker outlives a test
            store_backend="sqlite",  # type: ignore[arg-type]
            bus_backend="memory",  # type: ignore[arg-type]
            launcher_backend="local",  # type: ignore[arg-type]
            _env_file=None,  # type: ignore[call-arg]
        )
        server = AppServer(create_app(settings, clock=self.clock)).start()
        self.servers.append(server)
        return server

    def token(self, server: AppServer, name: str, role: str, expires: str | None = None) -> str:
        body = {"name": name, "role": role, "expires": expires}
        made = self.root.call(server, "POST", "/auth/tokens", json=body)
        assert made.status_code == 200, made.text
        value: str = made.json()["data"]["token"]
        return value


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    root = new_token()
    (tmp_path / "tokens").write_text(f"root admin {token_hash(root)}\n")
    with running_issuer() as issuer:
        world = World(tmp_path, Clock(), issuer, Credential(bearer=root))
        try:
            yield world
        finally:
            for server in world.servers:
                server.stop()


def login(server: AppServer, token: str) -> Credential:
    answer = HTTP.post(f"{server.url}/auth/login", json={"token": token})
    assert answer.status_code == 200, answer.text
    return Credential(cookie=answer.cookies[COOKIE], csrf=answer.json()["data"]["csrf_token"])


def me(credential: Credential, server: AppServer) -> httpx.Response:
    return credential.call(server, "GET", "/auth/me")


def reach(credential: Credential, server: AppServer, queue_id: str) -> dict[str, int]:
    """What the credential gets from each probe; `queue_id` is the queue the worker probes
    name (any queue, for the other kinds)."""
    report = {"event": "loading", "queue_id": queue_id, "producer": "probe", "records_written": 1}
    return {
        READ: credential.call(server, "GET", "/queues").status_code,
        STOP: credential.call(
            server, "POST", "/queues/stop", params={"queue_id": str(uuid.uuid4())}
        ).status_code,
        TOKENS: credential.call(server, "GET", "/auth/tokens").status_code,
        TELEMETRY: credential.call(server, "POST", "/internal/telemetry", json=report).status_code,
        COMMANDS: credential.call(
            server, "GET", "/internal/commands", params={"queue_id": queue_id}
        ).status_code,
        SOCKET: socket_code(credential, server),
    }


def refused_everywhere(credential: Credential, server: AppServer) -> bool:
    return (
        me(credential, server).status_code == 401
        and credential.call(server, "GET", "/queues").status_code == 401
    )


# -- reach ----------------------------------------------------------------------------------


def test_what_each_credential_reaches(world: World) -> None:
    server = world.replica()
    own = world.root.call(server, "POST", "/queues/start", json=SINGLE).json()["data"]["queue_id"]
    other = world.root.call(server, "POST", "/queues/start", json=SINGLE).json()["data"]["queue_id"]
    # What the local job of `own`'s step finds in its environment as QM_WORKER_TOKEN (app.py
    # worker_env): the credential of that step's run. The probes name another producer.
    step = world.root.call(server, "GET", f"/queues/{own}").json()["data"]["steps"][0]
    worker = Credential(bearer=server.container.tokens.token(step["telemetry_id"]))
    viewer, operator = (world.token(server, n, n) for n in ("viewer", "operator"))
    person = world.issuer.token("olga", ["operator"])
    callers = {
        "no credential": (NOBODY, own, NOTHING),
        "viewer API token": (Credential(bearer=viewer), own, VIEWER_REACH),
        "operator API token": (Credential(bearer=operator), own, OPERATOR_REACH),
        "admin API token": (world.root, own, ADMIN_REACH),
        "viewer session": (login(server, viewer), own, VIEWER_REACH),
        "admin session": (login(server, world.root.bearer or ""), own, ADMIN_REACH),
        "OIDC bearer token (operator)": (Credential(bearer=person), own, OPERATOR_REACH),
        "OIDC session (operator)": (login(server, person), own, OPERATOR_REACH),
        "worker credential, another step run of its queue": (worker, own, NOTHING),
        "worker credential, another queue": (worker, other, NOTHING),
    }
    got = {name: reach(cred, server, queue) for name, (cred, queue, _) in callers.items()}
    assert got == {name: expected for name, (_, _, expected) in callers.items()}
    # Nor can a worker credential be traded for a session, or name another queue in a body.
    assert HTTP.post(f"{server.url}/auth/login", json={"token": worker.bearer}).status_code == 401
    kinds = {
        name: me(callers[name][0], server).json()["data"]["kind"]
        for name in ("admin API token", "admin session", "OIDC bearer token (operator)")
    }
    assert kinds == {
        "admin API token": "token",
        "admin session": "token",
        "OIDC bearer token (operator)": "oidc",
    }


def test_a_page_on_another_origin_cannot_use_a_session(world: World) -> None:
    """SameSite=Strict keeps browsers from sending the cookie cross-site at all; if one did,
    a mutation still needs the same origin and the CSRF token, and a socket the same origin."""
    server = world.replica()
    session = login(server, world.root.bearer or "")
    evil = "https://evil.example"
    body = {"name": "planted", "role": "admin"}
    assert session.call(server, "POST", "/auth/tokens", json=body, origin=evil).status_code == 403
    no_csrf = Credential(cookie=session.cookie)
    assert no_csrf.call(server, "POST", "/auth/tokens", json=body).status_code == 403
    assert socket_code(session, server, origin=evil) == 4403
    names = [t["name"] for t in world.root.call(server, "GET", "/auth/tokens").json()["data"]]
    assert names == ["root"]


# -- logout ---------------------------------------------------------------------------------


def test_logout_ends_the_session_on_every_replica_its_sockets_and_after_a_restart(
    world: World,
) -> None:
    first, second = world.replica(), world.replica()
    session = login(first, world.root.bearer or "")
    assert me(session, second).json()["data"]["name"] == "root"  # one session, every replica
    with session.socket(second) as watching:
        assert serving(watching)
        assert session.call(first, "POST", "/auth/logout").status_code == 200
        assert refused_everywhere(session, first)  # at once where it was logged out
        planted = {"name": "planted", "role": "admin"}
        assert session.call(first, "POST", "/auth/tokens", json=planted).status_code == 401
        assert socket_code(session, first) == 4401
        assert close_code(watching, DEADLINE) == 4401  # the other replica's open socket
    wait_for(lambda: refused_everywhere(session, second), DEADLINE)
    restarted = world.replica()
    assert refused_everywhere(session, restarted)
    # A logout ends the session, not the token it was made from; a new login is a new session.
    assert world.root.call(restarted, "GET", "/auth/me").status_code == 200
    assert me(login(restarted, world.root.bearer or ""), second).status_code == 200


def test_logout_ends_an_oidc_session_but_not_the_oidc_token_itself(world: World) -> None:
    server = world.replica()
    person = world.issuer.token("olga", ["viewer"])
    session = login(server, person)
    assert session.call(server, "POST", "/auth/logout").status_code == 200
    assert refused_everywhere(session, server)
    # queue-manager cannot revoke a token the identity provider issued: it is valid until its
    # `exp`, which is why OIDC token lifetimes should be short (docs/security.md).
    assert Credential(bearer=person).call(server, "GET", "/queues").status_code == 200


# -- revocation -----------------------------------------------------------------------------


def test_revoking_a_token_ends_it_its_sessions_and_sockets_and_its_name_revives_nothing(
    world: World,
) -> None:
    first, second = world.replica(), world.replica()
    secret = world.token(first, "sess-adm", "admin")
    bearer, session = Credential(bearer=secret), login(first, secret)
    assert reach(session, second, "any") == ADMIN_REACH
    with contextlib.ExitStack() as stack:
        sockets = {
            "bearer": stack.enter_context(bearer.socket(second)),
            "session": stack.enter_context(session.socket(second)),
        }
        assert all(serving(s) for s in sockets.values())
        # Revoked, and at once a viewer token takes the name (issue 27, point 2).
        assert world.root.call(first, "DELETE", "/auth/tokens/sess-adm").status_code == 200
        viewer = world.token(first, "sess-adm", "viewer")
        assert refused_everywhere(bearer, first) and refused_everywhere(session, first)
        codes = {name: close_code(s, DEADLINE) for name, s in sockets.items()}
        assert codes == {"bearer": 4401, "session": 4401}
    wait_for(
        lambda: refused_everywhere(bearer, second) and refused_everywhere(session, second),
        DEADLINE,
    )
    for server in (first, second):
        assert reach(session, server, "any") == NOTHING
        assert reach(bearer, server, "any") == NOTHING
    # The new token is what it says: a viewer, with sessions of its own.
    assert me(login(second, viewer), first).json()["data"]["role"] == "viewer"


# -- expiry ---------------------------------------------------------------------------------


def test_an_expiring_api_token_ends_with_its_sessions_and_sockets(world: World) -> None:
    server = world.replica()
    secret = world.token(server, "temp", "operator", expires="1h")
    bearer, session = Credential(bearer=secret), login(server, secret)
    token_end = datetime.fromisoformat(me(bearer, server).json()["data"]["expires_at"])
    # The session cannot outlive its token.
    assert datetime.fromisoformat(me(session, server).json()["data"]["expires_at"]) == token_end
    with bearer.socket(server) as watching:
        assert serving(watching)
        world.clock.advance(token_end - world.clock() - timedelta(seconds=5))
        assert reach(session, server, "any") == OPERATOR_REACH
        world.clock.advance(timedelta(seconds=6))
        assert close_code(watching, DEADLINE) == 4401
    assert reach(bearer, server, "any") == NOTHING
    assert reach(session, server, "any") == NOTHING


def test_a_session_ends_after_auth_session_seconds(world: World) -> None:
    first, second = world.replica(), world.replica()
    began = world.clock()
    session = login(first, world.root.bearer or "")
    ends = datetime.fromisoformat(me(session, first).json()["data"]["expires_at"])
    assert began + timedelta(seconds=SESSION_SECONDS) <= ends
    assert ends <= world.clock() + timedelta(seconds=SESSION_SECONDS)
    world.clock.advance(ends - world.clock() - timedelta(seconds=5))
    assert me(session, second).status_code == 200
    world.clock.advance(timedelta(seconds=6))
    assert refused_everywhere(session, first) and refused_everywhere(session, second)
    assert world.root.call(first, "GET", "/auth/me").status_code == 200  # the token lives on


def test_an_oidc_token_is_good_until_its_exp_and_its_session_no_longer(world: World) -> None:
    server = world.replica()
    now = int(time.time())
    # `exp` is checked against real time, with LEEWAY_SECONDS for clocks that disagree.
    within_leeway = world.issuer.token("olga", exp=now - LEEWAY_SECONDS // 3)
    past = world.issuer.token("olga", exp=now - LEEWAY_SECONDS - 30)
    assert Credential(bearer=within_leeway).call(server, "GET", "/queues").status_code == 200
    assert Credential(bearer=past).call(server, "GET", "/queues").status_code == 401
    assert HTTP.post(f"{server.url}/auth/login", json={"token": past}).status_code == 401
    # A session made from a token ends when the token does, not AUTH_SESSION_SECONDS later.
    session = login(server, world.issuer.token("olga", exp=now + 300))
    ends = datetime.fromisoformat(me(session, server).json()["data"]["expires_at"])
    assert ends == datetime.fromtimestamp(now + 300, UTC)
    world.clock.advance(ends - world.clock() - timedelta(seconds=5))
    assert reach(session, server, "any") == OPERATOR_REACH
    world.clock.advance(timedelta(seconds=6))
    assert reach(session, server, "any") == NOTHING


def worker_reach(
    credential: Credential, server: AppServer, queue_id: str, producer: str
) -> dict[str, int]:
    """`reach`, with the worker probes naming the step run `producer` of `queue_id`."""
    got = reach(credential, server, queue_id)
    report = {"event": "loading", "queue_id": queue_id, "producer": producer, "records_written": 1}
    got[TELEMETRY] = credential.call(server, "POST", "/internal/telemetry", json=report).status_code
    params = {"queue_id": queue_id, "producer": producer}
    got[COMMANDS] = credential.call(server, "GET", "/internal/commands", params=params).status_code
    return got


def test_a_worker_credential_ends_with_its_step_run_and_needs_the_service_secret(
    world: World,
) -> None:
    """A worker credential is HMAC(secret, its step run's producer id) (docs/security.md): it
    speaks for that run only, and only while the run is open. The open run's reach (202, 200)
    and a retry's new credential are pinned end to end, with real workers, in
    tests/e2e/test_worker_credentials.py; here the job (`true`) ends at once, so the run is
    over and its own credential is refused (403). One made with another secret is refused
    (401), so rotating the secret ends every one of them."""
    server = world.replica()
    queue = world.root.call(server, "POST", "/queues/start", json=SINGLE).json()["data"]["queue_id"]

    def finished_step() -> str | None:
        data = world.root.call(server, "GET", f"/queues/{queue}").json()["data"]
        return str(data["steps"][0]["telemetry_id"]) if data["status"] == "finished" else None

    producer = wait_for(finished_step, DEADLINE)  # its job ends at once
    own = server.container.tokens.token(producer)
    assert worker_reach(Credential(bearer=own), server, queue, producer) == WORKER_ENDED_RUN
    forged = WorkerTokens(b"not the service's secret").token(producer)
    assert worker_reach(Credential(bearer=forged), server, queue, producer) == NOTHING
    with connect(
        f"{server.ws_url}/ws/topic",
        subprotocols=["bearer", own],  # type: ignore[list-item]
        open_timeout=5,
    ) as socket:
        assert close_code(socket, 5) == 4401
