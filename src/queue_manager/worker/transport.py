"""How a worker talks to queue-manager: the Transport port and its HTTP (embedded) adapter."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import httpx
import orjson
import structlog

from queue_manager.job_contract import COMMANDS_PATH, TELEMETRY_PATH, CommandField, CommandName

log = structlog.get_logger("queue_manager.worker")

Command = Mapping[str, Any]
OnCommand = Callable[[Command], None]


class DeliveryError(Exception):
    """One attempt to deliver a telemetry message failed."""

    def __init__(self, detail: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(detail)
        self.retryable = retryable
        #: the HTTP status that refused it, if any
        self.status = status


class Transport(Protocol):
    """One attempt per `send`; retrying and coalescing are the Worker's business."""

    name: str
    # Set once a command published from now on will be heard.
    ready: asyncio.Event

    async def send(self, body: Mapping[str, Any]) -> None:
        """Deliver one telemetry message or raise DeliveryError."""

    async def run_commands(self, on_command: OnCommand) -> None:
        """Hand every command meant for this worker to `on_command` until cancelled."""

    async def close(self) -> None: ...


class HttpTransport:
    """Embedded mode: POST telemetry, poll for commands (docs/worker-protocol.md)."""

    name = "http"

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        queue_id: str,
        producer: str,
        poll_interval: float = 1.0,
        timeout: float = 5.0,
    ) -> None:
        self._queue_id = queue_id
        self._producer = producer
        self._poll_interval = poll_interval
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0)),
        )
        # Commands wait on the service until polled, so none can be missed.
        self.ready = asyncio.Event()
        self.ready.set()

    async def send(self, body: Mapping[str, Any]) -> None:
        try:
            response = await self._client.post(
                TELEMETRY_PATH,
                content=orjson.dumps(body),
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(_describe_http_error(exc), retryable=True) from None
        _raise_for_status(response)

    async def run_commands(self, on_command: OnCommand) -> None:
        params = {"queue_id": self._queue_id, "producer": self._producer}
        failing: str | None = None
        while True:
            try:
                response = await self._client.get(COMMANDS_PATH, params=params)
                _raise_for_status(response)
                commands = _commands_of(response)
            except DeliveryError as exc:
                if exc.status == 403:
                    # The service refuses this run's credential: the run is over (its step
                    # ended, or a retry replaced it), so the worker has nothing left to do.
                    if failing != str(exc):
                        log.warning("run over, stopping", error=str(exc))
                        failing = str(exc)
                    on_command(
                        {
                            CommandField.QUEUE_ID: self._queue_id,
                            CommandField.COMMAND: CommandName.STOP.value,
                            CommandField.PAYLOAD: {},
                        }
                    )
                elif str(exc) != failing:
                    log.warning("command poll failed", error=str(exc))
                    failing = str(exc)
            except (httpx.HTTPError, ValueError) as exc:
                detail = (
                    str(exc) if not isinstance(exc, httpx.HTTPError) else _describe_http_error(exc)
                )
                # Log when the failure starts or changes, not once a second.
                if detail != failing:
                    log.warning("command poll failed", error=detail)
                    failing = detail
            else:
                if failing is not None:
                    log.info("command poll recovered")
                    failing = None
                for command in commands:
                    on_command(command)
            await asyncio.sleep(self._poll_interval)

    async def close(self) -> None:
        await self._client.aclose()


def _raise_for_status(response: httpx.Response) -> None:
    if response.is_success:
        return
    code = response.status_code
    detail = f"HTTP {code} from {response.request.url.path}: {_message_of(response)}"
    raise DeliveryError(detail, retryable=code == 429 or code >= 500, status=code)


def _message_of(response: httpx.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        return str(payload["message"])[:200]
    return response.text[:200]


def _commands_of(response: httpx.Response) -> list[Command]:
    payload = response.json()
    data = payload.get("data") if isinstance(payload, dict) else None
    commands = data.get("commands") if isinstance(data, dict) else None
    if not isinstance(commands, list):
        raise ValueError("commands answer without data.commands")
    return [command for command in commands if isinstance(command, dict)]


def _describe_http_error(exc: httpx.HTTPError) -> str:
    # The request (and so the Authorization header) is deliberately left out.
    text = str(exc) or "no detail"
    return f"{type(exc).__name__}: {text}"
