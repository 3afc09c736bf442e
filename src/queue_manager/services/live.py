"""Live updates cross the bus so that every replica's WebSocket clients see every change.

The engine hands updates to `UpdateRelay.publish`, which never waits: updates queue up locally
and a background loop sends them (ordered per queue). Another loop feeds what the bus delivers,
from any replica, to this replica's subscribers.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import structlog

from queue_manager.domain.errors import DependencyUnavailable
from queue_manager.ports import Broadcaster, Bus

log = structlog.get_logger(__name__)


MAX_PER_MESSAGE = 500


class UpdateRelay:
    def __init__(self, bus: Bus, local: Broadcaster, *, buffer: int = 10_000) -> None:
        self._bus = bus
        self._local = local
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue(maxsize=buffer)
        self._dropped = 0

    def publish(self, update: dict[str, Any]) -> None:
        try:
            self._outbox.put_nowait(orjson.dumps(update))
        except asyncio.QueueFull:
            # Live updates are a view, the store is the truth: shed load rather than block.
            self._dropped += 1
            if self._dropped % 1000 == 1:
                log.warning("live updates dropped: bus too slow", dropped=self._dropped)

    async def send_loop(self) -> None:
        while True:
            # Whatever piled up while the last send ran goes out as one message.
            pending = [await self._outbox.get()]
            while len(pending) < MAX_PER_MESSAGE and not self._outbox.empty():
                pending.append(self._outbox.get_nowait())
            try:
                await self._bus.send_updates(b"[" + b",".join(pending) + b"]")
            except DependencyUnavailable as exc:
                log.warning("live updates not sent", count=len(pending), reason=exc.detail)

    async def receive_loop(self) -> None:
        async for value in self._bus.updates():
            try:
                updates = orjson.loads(value)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(updates, list):
                continue
            for update in updates:
                if isinstance(update, dict):
                    self._local.publish(update)
