"""WebSocket fan-out: each client has a bounded queue and its own sender task.

`publish` never awaits, so a slow client cannot delay the dispatcher or the other clients;
a client whose queue overflows is disconnected (it can reconnect and re-read state over REST).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect

from queue_manager.observability.metrics import Metrics

log = structlog.get_logger(__name__)

SLOW_CLIENT_CLOSE = 1013  # "try again later"
GOING_AWAY = 1001


@dataclass(eq=False)
class _Client:
    socket: WebSocket
    queue_id: str | None
    outbox: asyncio.Queue[str | None]
    overflowed: bool = field(default=False)
    sender: asyncio.Task[None] | None = None


class Hub:
    def __init__(self, metrics: Metrics, *, heartbeat: float, buffer: int) -> None:
        self._metrics = metrics
        self._heartbeat = heartbeat
        self._buffer = buffer
        self._clients: set[_Client] = set()

    @property
    def clients(self) -> int:
        return len(self._clients)

    def publish(self, update: dict[str, Any]) -> None:
        if not self._clients:
            return
        # Encoded once for every client.
        payload = orjson.dumps(update).decode()
        queue_id = update.get("queue_id")
        for client in list(self._clients):
            if client.queue_id is not None and client.queue_id != queue_id:
                continue
            try:
                client.outbox.put_nowait(payload)
            except asyncio.QueueFull:
                self._drop(client)

    def _drop(self, client: _Client) -> None:
        if client.overflowed:
            return
        client.overflowed = True
        self._clients.discard(client)
        self._metrics.websocket_clients.set(len(self._clients))
        # Its sender may be stuck in a send that will never complete: cancel it outright.
        if client.sender is not None:
            client.sender.cancel()
        log.warning("slow websocket client disconnected", queue_id=client.queue_id)

    async def serve(
        self, socket: WebSocket, queue_id: str | None, *, subprotocol: str | None = None
    ) -> None:
        if subprotocol is None:
            await socket.accept()
        else:
            await socket.accept(subprotocol=subprotocol)
        client = _Client(socket, queue_id, asyncio.Queue(maxsize=self._buffer))
        self._clients.add(client)
        self._metrics.websocket_clients.set(len(self._clients))
        reader = asyncio.create_task(self._drain_incoming(socket))
        client.sender = asyncio.create_task(self._send_loop(client, reader))
        try:
            await asyncio.wait({client.sender, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (client.sender, reader):
                task.cancel()
            await asyncio.gather(client.sender, reader, return_exceptions=True)
            self._clients.discard(client)
            self._metrics.websocket_clients.set(len(self._clients))
        if client.overflowed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    socket.close(code=SLOW_CLIENT_CLOSE, reason="client too slow"), 1.0
                )

    async def _send_loop(self, client: _Client, reader: asyncio.Task[None]) -> None:
        heartbeat = orjson.dumps({"event": "heartbeat"}).decode()
        while not reader.done():
            try:
                payload = client.outbox.get_nowait()
            except asyncio.QueueEmpty:
                try:
                    payload = await asyncio.wait_for(client.outbox.get(), self._heartbeat)
                except TimeoutError:
                    payload = heartbeat
            if payload is None:
                with contextlib.suppress(Exception):
                    await client.socket.close(code=GOING_AWAY, reason="server shutting down")
                return
            try:
                await client.socket.send_text(payload)
            except (WebSocketDisconnect, RuntimeError, OSError):
                return

    async def _drain_incoming(self, socket: WebSocket) -> None:
        """Clients send nothing we need, but reading is how a disconnect is noticed."""
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while True:
                await socket.receive_text()

    async def close(self) -> None:
        for client in list(self._clients):
            with contextlib.suppress(asyncio.QueueFull):
                client.outbox.put_nowait(None)
