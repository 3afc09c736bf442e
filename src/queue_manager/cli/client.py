"""A small async client of the HTTP API (docs/api.md) for the CLI.

Every failure a user can cause or meet (an error envelope, a refused connection, a timeout, an
answer that is not the envelope) becomes a `CliError`: one line, plus the field errors of a 422,
and never a traceback.
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from queue_manager import __version__

DEFAULT_API_URL = "http://127.0.0.1:8000"
#: the shortest id prefix a command accepts for a queue id (docs/api.md, `id_prefix`)
MIN_ID_PREFIX = 6
#: how many candidates an ambiguous prefix lists
_CANDIDATES = 10
#: what the list's `id_prefix` takes; any other text is no prefix, only an id to ask about
_PREFIX_CHARS = re.compile(r"[A-Za-z0-9-]{1,64}")


class CliError(Exception):
    """A user-facing failure: printed as `error: <message>` and the detail lines, exit `code`."""

    def __init__(self, message: str, details: Sequence[str] = (), code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details)
        self.code = code


class Unreachable(CliError):
    """The service could not be reached (refused, timed out): worth retrying later."""


def check_api_url(url: str) -> str:
    """The base URL without its trailing slash; ValueError when it cannot be an API address."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValueError(f"not a URL: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError("expected http://host[:port] or https://host[:port]")
    return url.rstrip("/")


def ws_url(api_url: str, queue_id: str | None) -> str:
    """The WebSocket address of `/ws/topic` behind `api_url` (same host, same path prefix)."""
    parsed = httpx.URL(api_url)
    scheme = "wss" if parsed.scheme == "https" else "ws"
    path = parsed.path.rstrip("/") + "/ws/topic"
    params = {"queue_id": queue_id} if queue_id else {}
    return str(parsed.copy_with(scheme=scheme, path=path, params=params, fragment=None))


def _refused(exc: BaseException) -> bool:
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError) or "refused" in str(current).lower():
            return True
        pending += [current.__cause__, current.__context__]
        if isinstance(current, BaseExceptionGroup):
            pending += list(current.exceptions)
    return False


def connection_problem(api_url: str, exc: BaseException) -> Unreachable:
    """The one line for a service that cannot be reached at all."""
    text = "connection refused" if _refused(exc) else (str(exc) or type(exc).__name__)
    return Unreachable(
        f"cannot reach queue-manager at {api_url}: {text} "
        "(is `queue-manager serve` running? set --api-url or QM_API_URL)"
    )


def envelope_error(payload: Any, status_code: int) -> CliError:
    """`error: <message>` plus `field: message` for each entry of data.errors."""
    message = f"HTTP {status_code}"
    details: list[str] = []
    if isinstance(payload, dict):
        message = str(payload.get("message") or message)
        data = payload.get("data")
        errors = data.get("errors") if isinstance(data, dict) else None
        if isinstance(errors, list):
            for item in errors:
                if isinstance(item, dict):
                    details.append(f"{item.get('field', 'body')}: {item.get('message', 'invalid')}")
                else:
                    details.append(str(item))
    return CliError(message, details)


class ApiClient:
    """`async with ApiClient(url) as api:` then one method per endpoint."""

    def __init__(self, api_url: str, *, timeout: float = 30.0, token: str | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        #: sent on every call, the WebSocket included
        self.auth_headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(
            base_url=self.api_url,
            timeout=timeout,
            headers={"User-Agent": f"queue-manager-cli/{__version__}", **self.auth_headers},
        )

    @property
    def http(self) -> httpx.AsyncClient:
        """The underlying client, for calls that stream (logs)."""
        return self._http

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The success envelope of one call; any other outcome raises `CliError`."""
        try:
            response = await self._http.request(
                method, path, params=params, json=json, headers=headers
            )
        except httpx.ConnectError as exc:
            raise connection_problem(self.api_url, exc) from None
        except httpx.TimeoutException:
            raise Unreachable(
                f"queue-manager at {self.api_url} did not answer within "
                f"{self._http.timeout.read or 0:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise CliError(f"request to {self.api_url} failed: {exc}") from None
        try:
            payload = response.json()
        except ValueError:
            snippet = " ".join(response.text.split())[:200]
            raise CliError(
                f"unexpected answer from {response.request.url}: HTTP {response.status_code}"
                + (f" {snippet}" if snippet else "")
            ) from None
        if response.is_error or not isinstance(payload, dict) or payload.get("status") != "success":
            raise envelope_error(payload, response.status_code)
        return payload

    async def start(self, body: Any, idempotency_key: str | None = None) -> str:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        envelope = await self.request("POST", "/queues/start", json=body, headers=headers)
        data = envelope.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("queue_id"), str):
            raise CliError("the service answered without a queue_id")
        return str(data["queue_id"])

    async def stop(self, queue_id: str, *, force: bool = False) -> dict[str, Any]:
        params: dict[str, Any] = {"queue_id": queue_id}
        if force:
            params["force"] = "true"
        envelope = await self.request("POST", "/queues/stop", params=params)
        data = envelope.get("data")
        return data if isinstance(data, dict) else {"queue_id": queue_id}

    async def list(
        self,
        *,
        status: str | None = None,
        symbol: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        parent: str | None = None,
        top_level: bool = False,
        created_from: str | None = None,
        created_to: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        params = {
            key: value
            for key, value in (
                ("status", status),
                ("symbol", symbol),
                ("limit", limit),
                ("cursor", cursor),
                ("parent", parent),
                ("top_level", "true" if top_level else None),
                ("created_from", created_from),
                ("created_to", created_to),
            )
            if value is not None
        }
        envelope = await self.request("GET", "/queues", params=params)
        data = envelope.get("data")
        items = [q for q in data if isinstance(q, dict)] if isinstance(data, list) else []
        next_cursor = envelope.get("next_cursor")
        return items, str(next_cursor) if next_cursor else None

    async def resolve(self, queue_id: str) -> str:
        """The full id of the queue `queue_id` names: a full id as it is, else the one queue
        whose id starts with it (six characters or more). No match leaves it as given, for the
        service to answer 404; more than one lists them. Text that cannot start an id (a '/', a
        space) is left as given too."""
        if _is_full_id(queue_id) or not _PREFIX_CHARS.fullmatch(queue_id):
            return queue_id
        if len(queue_id) < MIN_ID_PREFIX:
            raise CliError(
                f"queue id {queue_id!r} is too short: give the full id or its first "
                f"{MIN_ID_PREFIX} characters or more",
                code=2,
            )
        envelope = await self.request(
            "GET", "/queues", params={"id_prefix": queue_id, "limit": _CANDIDATES}
        )
        data = envelope.get("data")
        found = [q for q in data if isinstance(q, dict)] if isinstance(data, list) else []
        if not found:
            return queue_id
        if len(found) == 1:
            return str(found[0].get("id", queue_id))
        more = " or more" if envelope.get("next_cursor") else ""
        raise CliError(
            f"queue id {queue_id!r} is ambiguous: {len(found)}{more} queues start with it; "
            "give more characters",
            [
                f"{q.get('id')}  {q.get('status')}  {q.get('symbol')}  {q.get('created_at')}"
                for q in found
            ],
        )

    async def get(self, queue_id: str) -> dict[str, Any]:
        envelope = await self.request("GET", f"/queues/{quote(queue_id, safe='')}")
        data = envelope.get("data")
        if not isinstance(data, dict):
            raise CliError(f"the service answered without the state of queue {queue_id}")
        return data


def _is_full_id(text: str) -> bool:
    """A queue id as the service makes them (a UUID in its usual 36-character form)."""
    if len(text) != 36:
        return False
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def read_body(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from a file, or stdin for '-': the body of `what`."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from None
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise CliError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise CliError(f"{path} must hold a JSON object (the body of {what})")
    return body
