"""The response envelope every endpoint answers with (docs/api.md)."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

import orjson
from fastapi.responses import Response
from pydantic import BaseModel

T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    status: Literal["success", "error"]
    message: str
    data: T


class ErrorEnvelope(BaseModel):
    status: Literal["error"]
    message: str
    data: dict[str, Any] | None = None


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route can give (all are envelopes)."""
    return {code: {"model": ErrorEnvelope} for code in (*codes, 422)}


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError


class EnvelopeResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=_default)


def success(message: str, data: Any = None, status_code: int = 200, **extra: Any) -> Response:
    return EnvelopeResponse(
        {"status": "success", "message": message, "data": data, **extra}, status_code=status_code
    )


def success_json(message: str, data_json: bytes) -> Response:
    """Success around data that is already JSON (a stored document): no decode, no re-encode."""
    body = b'{"status":"success","message":' + orjson.dumps(message) + b',"data":' + data_json
    return Response(body + b"}", media_type="application/json")


def error(
    message: str, status_code: int, data: Any = None, headers: dict[str, str] | None = None
) -> Response:
    return EnvelopeResponse(
        {"status": "error", "message": message, "data": data},
        status_code=status_code,
        headers=headers,
    )
