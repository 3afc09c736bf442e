"""The one place that decides who is calling, and whether their role allows the route.

Credentials, in this order: `Authorization: Bearer <token>`; for WebSockets also the
`Sec-WebSocket-Protocol` pair `bearer, <token>` (browsers cannot set headers on an upgrade);
then the session cookie. Never a query parameter: URLs end up in access logs.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

import structlog
from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection, Request
from starlette.websockets import WebSocket

from queue_manager.api.container import Container, get_container
from queue_manager.api.sessions import COOKIE, CSRF_HEADER
from queue_manager.domain.errors import DomainError, PermissionDenied, Unauthenticated
from queue_manager.domain.identity import ANONYMOUS, BrowserSession, Principal, Role

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WS_PROTOCOL = "bearer"


class CsrfRefused(DomainError):
    """A cookie-authenticated mutation without a matching origin and CSRF token."""


@dataclass(frozen=True)
class Caller:
    principal: Principal
    #: the subprotocol to accept a WebSocket with (the client offered `bearer, <token>`)
    subprotocol: str | None = None


async def identify(conn: HTTPConnection, container: Container) -> Caller:
    if not container.auth.enabled:
        return Caller(ANONYMOUS, _offered_bearer(conn)[0])
    header = conn.headers.get("authorization")
    if header is not None:
        scheme, _, credential = header.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise Unauthenticated("use the header Authorization: Bearer <token>")
        return Caller(await container.identity.authenticate(credential))
    subprotocol, offered = _offered_bearer(conn)
    if offered is not None:
        return Caller(await container.identity.authenticate(offered), subprotocol)
    cookie = conn.cookies.get(COOKIE)
    if cookie is not None:
        session = container.sessions.read(cookie)
        if session is None:
            raise Unauthenticated("session expired or not valid; log in again")
        # Logged out? Its token revoked, expired, or replaced? The role is the token's, now.
        principal = await container.identity.resume(session)
        _check_same_origin(conn, session)
        return Caller(principal)
    raise Unauthenticated("credential required: send Authorization: Bearer <token>")


def _offered_bearer(conn: HTTPConnection) -> tuple[str | None, str | None]:
    if not isinstance(conn, WebSocket):
        return None, None
    offered = [p.strip() for p in conn.headers.get("sec-websocket-protocol", "").split(",")]
    if len(offered) >= 2 and offered[0].lower() == WS_PROTOCOL and offered[1]:
        return offered[0], offered[1]
    return None, None


def _check_same_origin(conn: HTTPConnection, session: BrowserSession) -> None:
    """Cookies ride along on cross-site requests; the origin and a header token must not."""
    is_socket = isinstance(conn, WebSocket)
    if not is_socket and conn.scope.get("method", "GET") in SAFE_METHODS:
        return
    origin = conn.headers.get("origin") or conn.headers.get("referer")
    if origin is None or urlsplit(origin).netloc != conn.headers.get("host"):
        raise CsrfRefused("cross-origin request refused for a cookie session")
    if is_socket:
        return
    sent = conn.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent, session.csrf):
        raise CsrfRefused(f"cookie sessions must send the {CSRF_HEADER} header from /auth/me")


def authorize(principal: Principal, role: Role, action: str) -> None:
    if not principal.role.allows(role):
        raise PermissionDenied(role.value, action)


#: declares the scheme in OpenAPI (Swagger's "Authorize"); `identify` reads the header itself
BEARER = HTTPBearer(auto_error=False, description="An API token or an OIDC access token")


def require(role: Role, action: str) -> Callable[..., Awaitable[Principal]]:
    """A route dependency: the caller's principal, once its role allows `action`."""

    async def dependency(
        request: Request,
        _: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)] = None,
    ) -> Principal:
        container = await get_container(request)
        principal = (await identify(request, container)).principal
        authorize(principal, role, action)
        # Every log line of this request names who made it.
        structlog.contextvars.bind_contextvars(actor=principal.actor)
        return principal

    return dependency


async def metrics_reader(request: Request) -> None:
    """/metrics is open (scrapers rarely carry tokens) unless METRICS_AUTH asks for a viewer."""
    container = await get_container(request)
    if container.auth.enabled and container.auth.metrics_need_viewer:
        authorize((await identify(request, container)).principal, Role.VIEWER, "read metrics")
