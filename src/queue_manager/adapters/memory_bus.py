"""Embedded bus: the two topics as in-process queues. Commands reach local workers by HTTP poll."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import orjson

from queue_manager.domain.errors import DependencyUnavailable
from queue_manager.domain.telemetry import Source
from queue_manager.ports import Command, Message

MAX_BATCH = 500


@dataclass
class _Batch:
    parts: Sequence[tuple[Source, Sequence[bytes]]]

    async def commit(self) -> None:
        """Nothing to acknowledge: an in-process message is gone once taken."""


class MemoryBus:
    name = "memory"

    def __init__(self, *, max_pending: int = 100_000) -> None:
        self._inbox: asyncio.Queue[Message] = asyncio.Queue(maxsize=max_pending)
        self._updates: asyncio.Queue[bytes] = asyncio.Queue(maxsize=max_pending)
        self._stopped = asyncio.Event()
        self._running = False

    async def start(self) -> None:
        self._stopped.clear()
        self._running = True

    async def stop(self) -> None:
        self._stopped.set()
        self._running = False

    async def ping(self) -> None:
        """Reachable whenever it runs (it lives in this process); not before start or after stop,
        like a Kafka bus without its connection."""
        if not self._running:
            raise DependencyUnavailable("bus", "in-process bus not started")

    async def send_command(self, command: Command) -> None:
        # queue-control carries commands too; the dispatcher reads and ignores them, as on Kafka.
        await self._inbox.put(Message(Source.CONTROL, orjson.dumps(command.as_message())))

    async def send_telemetry(self, value: bytes) -> None:
        await self._inbox.put(Message(Source.EVENTS, value))

    async def send_updates(self, value: bytes) -> None:
        await self._updates.put(value)

    async def updates(self) -> AsyncIterator[bytes]:
        while not self._stopped.is_set():
            yield await self._updates.get()

    async def batches(self) -> AsyncIterator[_Batch]:
        while not self._stopped.is_set():
            first = await self._inbox.get()
            messages = [first]
            while len(messages) < MAX_BATCH and not self._inbox.empty():
                messages.append(self._inbox.get_nowait())
            yield _Batch(parts(messages))


class NoDataTopics:
    """The `DataTopics` of embedded mode: workers report over HTTP and have no data topics."""

    async def position_group(self, topic: str, group: str, *, at_end: bool) -> None:
        """Nothing to position: in embedded mode no consumer group reads a data topic."""

    async def group_lag(self, topic: str, group: str) -> int | None:
        """Unknown: in embedded mode workers report over HTTP and have no data topics."""
        return None


def parts(messages: Sequence[Message]) -> list[tuple[Source, list[bytes]]]:
    """Consecutive messages of one source as one part, keeping their order."""
    out: list[tuple[Source, list[bytes]]] = []
    for message in messages:
        if not out or out[-1][0] is not message.source:
            out.append((message.source, []))
        out[-1][1].append(message.value)
    return out
