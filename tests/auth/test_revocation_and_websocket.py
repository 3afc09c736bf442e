"""A token revoked on one replica is refused by another sharing the store within 5 s, and the
WebSockets opened with it there are closed; how a browser and a script present a token."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.support.service import Service, wait_for

REVOCATION_DEADLINE = 5.0


def _ws(service: Service, query: str = "", **kw: object) -> ClientConnection:
    url = service.url.replace("http://", "ws://") + "/ws/topic" + query
    return connect(url, open_timeout=5, **kw)  # type: ignore[arg-type]


def _close_code(socket: ClientConnection, within: float) -> int | None:
    """The close code the server sent within `within` seconds (heartbeats are skipped)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            socket.recv(timeout=max(deadline - time.monotonic(), 0.01))
        except TimeoutError:
            return None
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
    return None


def test_revocation_reaches_the_other_replica_and_its_open_sockets(
    secured: Callable[..., Service],
) -> None:
    first = secured(WS_HEARTBEAT_SECONDS="1")
    second = secured(WS_HEARTBEAT_SECONDS="1")
    token = first.post("/auth/tokens", json={"name": "wallboard", "role": "viewer"}).json()["data"][
        "token"
    ]
    bearer = {"Authorization": f"Bearer {token}"}
    # Created on the first replica a moment ago, usable on the second at once.
    assert httpx.get(f"{second.url}/queues", headers=bearer).status_code == 200
    browser = _ws(second, subprotocols=["bearer", token])  # type: ignore[list-item]
    script = _ws(second, additional_headers=bearer)
    assert browser.subprotocol == "bearer"
    assert _close_code(browser, 2) is None and _close_code(script, 2) is None  # served
    codes: dict[str, int | None] = {}

    def watch(name: str, socket: ClientConnection) -> None:
        codes[name] = _close_code(socket, REVOCATION_DEADLINE + 1)

    watchers = [
        threading.Thread(target=watch, args=item)
        for item in (("browser", browser), ("script", script))
    ]
    revoked_at = time.monotonic()
    assert first.delete("/auth/tokens/wallboard").status_code == 200
    for thread in watchers:
        thread.start()
    wait_for(
        lambda: httpx.get(f"{second.url}/queues", headers=bearer).status_code == 401,
        REVOCATION_DEADLINE,
    )
    for thread in watchers:
        thread.join()
    assert time.monotonic() - revoked_at < REVOCATION_DEADLINE + 1
    assert codes == {"browser": 4401, "script": 4401}


@pytest.mark.parametrize(
    ("how", "code"),
    [("no credential", 4401), ("token in the URL", 4401), ("garbage", 4401)],
)
def test_an_upgrade_without_a_valid_credential_is_closed_4401(
    secured: Callable[..., Service], admin_token: str, how: str, code: int
) -> None:
    service = secured()
    query = f"?token={admin_token}" if how == "token in the URL" else ""
    headers = {"Authorization": "Bearer qm_garbage"} if how == "garbage" else {}
    with _ws(service, query, additional_headers=headers) as socket:
        assert _close_code(socket, 5) == code
