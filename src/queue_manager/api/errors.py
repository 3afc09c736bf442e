"""The one place that turns errors into envelopes and HTTP codes."""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from queue_manager.api.auth import CsrfRefused
from queue_manager.api.envelope import error
from queue_manager.domain.errors import (
    Conflict,
    DependencyUnavailable,
    DomainError,
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
    Conflict: 409,
    InvalidRequest: 422,
    DependencyUnavailable: 503,
    LaunchFailed: 422,
}
_HEADERS = {401: {"WWW-Authenticate": "Bearer"}, 503: {"Retry-After": "5"}}


# Union tags pydantic puts in error locations; the client never wrote them.
def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(_: Request, exc: DomainError) -> Response:
        code = next((c for t, c in _STATUS.items() if isinstance(exc, t)), 400)
        return error(exc.message, code, exc.data, _HEADERS.get(code))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return error("Malformed JSON body", 400, {"errors": field_errors(errors)})
        return error("Invalid request", 422, {"errors": field_errors(errors)})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "HTTP error"
        return error(message, exc.status_code, None, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled error", path=request.url.path, exc_info=exc)
        return error("Internal error", 500)
