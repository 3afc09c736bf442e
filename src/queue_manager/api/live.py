"""WS /ws/topic: one JSON object per state change, plus heartbeats; with `?batch=1` each frame
is a JSON array of updates; with `?ack=1` the client answers each frame before the next is sent.
A slow reader gets the latest value of each key (api/hub.py).

Browsers cannot send headers with an upgrade, so the token may also come as the subprotocol pair
`bearer, <token>`, or from the session cookie. A refused socket is accepted and closed at once
with 4401 / 4403, which browsers report (an HTTP refusal before the upgrade they do not). While
open, the credential is re-checked, so revoking a token closes its sockets within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketState

from queue_manager.api.auth import CsrfRefused, authorize, identify
from queue_manager.api.container import Container, get_container
from queue_manager.domain.errors import DependencyUnavailable, PermissionDenied, Unauthenticated
from queue_manager.domain.identity import Principal, Role

router = APIRouter()

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_UNAVAILABLE = 1013


@router.websocket("/ws/topic")
async def topic(
    socket: WebSocket, queue_id: str | None = None, batch: bool = False, ack: bool = False
) -> None:
    container = await get_container(socket)
    try:
        caller = await identify(socket, container)
        authorize(caller.principal, Role.VIEWER, "follow live updates")
    except Unauthenticated as exc:
        await refuse(socket, CLOSE_UNAUTHENTICATED, exc.message)
        return
    except (PermissionDenied, CsrfRefused) as exc:
        await refuse(socket, CLOSE_FORBIDDEN, exc.message)
        return
    except DependencyUnavailable as exc:
        await refuse(socket, CLOSE_UNAVAILABLE, exc.message)
        return
    guard = None
    if container.auth.enabled:
        guard = asyncio.create_task(_close_when_revoked(socket, container, caller.principal))
    try:
        await container.hub.serve(
            socket, queue_id, subprotocol=caller.subprotocol, batch=batch, ack=ack
        )
    finally:
        if guard is not None:
            guard.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await guard


async def refuse(socket: WebSocket, code: int, reason: str) -> None:
    """Accept, then close at once with `code` and `reason` (which a browser does report)."""
    offered = socket.headers.get("sec-websocket-protocol", "")
    subprotocol = "bearer" if offered.split(",")[0].strip().lower() == "bearer" else None
    await socket.accept(subprotocol=subprotocol)
    # A close frame's reason is at most 123 bytes of UTF-8.
    short = reason.encode()[:123].decode(errors="ignore")
    await socket.close(code=code, reason=short)


async def _close_when_revoked(socket: WebSocket, container: Container, who: Principal) -> None:
    every = container.settings.auth_refresh_seconds
    while socket.client_state is not WebSocketState.DISCONNECTED:
        await asyncio.sleep(every)
        try:
            valid = await container.identity.still_valid(who)
        except DependencyUnavailable:
            continue  # the store is down: keep the socket rather than drop every viewer
        if not valid:
            with contextlib.suppress(RuntimeError, OSError):
                await socket.close(CLOSE_UNAUTHENTICATED, "credential revoked or expired")
            return
