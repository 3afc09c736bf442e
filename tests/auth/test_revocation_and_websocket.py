"""A token revoked on one replica is refused by another sharing the store within 5 s, and the
WebSockets opened with it there are closed; how a browser and a script present a token."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.support.service import Service, wait_for
from tests.support.waiting import wait_until

REVOCATION_DEADLINE = 5.0


def _ws(service: Service, query: str = "", **kw: object) -> ClientConnection:
    url = service.url.replace("http://", "ws://") + "/ws/topic" + query
    return connect(url, open_timeout=5, **kw)  # type: ignore[arg-type]


def _said(socket: ClientConnection) -> str | int | None:
    """What the server has said on the socket so far, without waiting: a frame, the code it
    closed the socket with (1006 without a close frame), or None if nothing yet."""
    try:
        frame = socket.recv(timeout=0)
    except TimeoutError:
        return None
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else 1006
    return frame if isinstance(frame, str) else frame.decode()


def _closed(socket: ClientConnection) -> int | None:
    """The code the server closed the socket with (the frames before it, heartbeats, read
    past), or None while it has not."""
    while isinstance(answer := _said(socket), str):
        pass
    return answer


def _close_code(socket: ClientConnection, within: float) -> int:
    """The close code the server sends within `within` seconds; WaitTimeout if it keeps
    serving."""
    return wait_until(lambda: _closed(socket), within, what="the server to close the socket")


def _heartbeat(socket: ClientConnection) -> str:
    """The socket's first frame, a heartbeat on a quiet service: proof that it is served (a
    refusal would have closed it before)."""
    frame = wait_until(lambda: _said(socket), 5, what="a heartbeat on the socket")
    assert isinstance(frame, str), f"closed with {frame} instead of a heartbeat"
    return frame


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
    sockets = {"browser": browser, "script": script}
    # Served: each is sent a heartbeat (WS_HEARTBEAT_SECONDS=1), not closed.
    assert {name: _heartbeat(s) for name, s in sockets.items()} == dict.fromkeys(
        sockets, '{"event":"heartbeat"}'
    )
    revoked_at = time.monotonic()
    assert first.delete("/auth/tokens/wallboard").status_code == 200
    wait_for(
        lambda: httpx.get(f"{second.url}/queues", headers=bearer).status_code == 401,
        REVOCATION_DEADLINE,
        what="the second replica to refuse the revoked token",
    )
    codes: dict[str, int] = {}

    def all_closed() -> bool:
        for name, socket in sockets.items():
            if name not in codes and (code := _closed(socket)) is not None:
                codes[name] = code
        return len(codes) == len(sockets)

    wait_until(
        all_closed,
        revoked_at + REVOCATION_DEADLINE + 1 - time.monotonic(),
        what="the second replica to close the revoked token's sockets",
        detail=lambda: f"closed so far: {codes}",
    )
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
