"""The one place that turns errors into envelopes and HTTP codes."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.status import WS_1008_POLICY_VIOLATION

from queue_manager.api.auth import CsrfRefused
from queue_manager.api.envelope import error
from queue_manager.api.live import refuse
from queue_manager.domain.errors import (
    CollectionNotFound,
    Conflict,
    DependencyUnavailable,
    DomainError,
    ExpectedGapNotFound,
    InvalidRequest,
    LaunchFailed,
    LogsUnavailable,
    PermissionDenied,
    QueueNotFound,
    ScheduleNotFound,
    TokenNotFound,
    Unauthenticated,
)
from queue_manager.domain.requests import field_errors

log = structlog.get_logger(__name__)

_STATUS: dict[type[DomainError], int] = {
    Unauthenticated: 401,
    PermissionDenied: 403,
    CsrfRefused: 403,
    TokenNotFound: 404,
    LogsUnavailable: 404,
    QueueNotFound: 404,
    ScheduleNotFound: 404,
    CollectionNotFound: 404,
    ExpectedGapNotFound: 404,
    Conflict: 409,
    InvalidRequest: 422,
    DependencyUnavailable: 503,
    LaunchFailed: 422,
}
_HEADERS = {401: {"WWW-Authenticate": "Bearer"}, 503: {"Retry-After": "5"}}


def _body_type(request: Request) -> Any:
    """The type the route validates its body as (its unknown fields are told against it)."""
    field = getattr(request.scope.get("route"), "body_field", None)
    return getattr(getattr(field, "field_info", None), "annotation", None)


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(_: Request, exc: DomainError) -> Response:
        code = next((c for t, c in _STATUS.items() if isinstance(exc, t)), 400)
        return error(exc.message, code, exc.data, _HEADERS.get(code))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        named = field_errors(errors, model=_body_type(request))
        if any(e.get("type") == "json_invalid" for e in errors):
            return error("Malformed JSON body", 400, {"errors": named})
        return error("Invalid request", 422, {"errors": named})

    @app.exception_handler(WebSocketRequestValidationError)
    async def websocket_validation_error(
        socket: WebSocket, exc: WebSocketRequestValidationError
    ) -> None:
        # Accepted, then closed with 1008 and a reason naming the parameter: refused before the
        # upgrade, a browser would only see a 403 (api/live.py).
        named = field_errors(list(exc.errors()))
        reason = "; ".join(f"{e['field']}: {e['message']}" for e in named)
        await refuse(socket, WS_1008_POLICY_VIOLATION, f"invalid {reason}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "HTTP error"
        return error(message, exc.status_code, None, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled error", path=request.url.path, exc_info=exc)
        return error("Internal error", 500)
