"""Embedded mode (docs/worker-protocol.md): what local workers reporting over HTTP may do —
hand in telemetry and learn whether they must stop."""

from __future__ import annotations

from typing import Any

from queue_manager.domain.errors import QueueNotFound
from queue_manager.domain.state import worker_must_stop
from queue_manager.job_contract import CommandField, CommandName
from queue_manager.ports import Bus, StateStore


class WorkerReports:
    def __init__(self, store: StateStore, bus: Bus) -> None:
        self._store = store
        self._bus = bus

    async def accept_telemetry(self, raw: bytes) -> None:
        # Through the bus, like Kafka telemetry: one dispatcher applies everything.
        await self._bus.send_telemetry(raw)

    async def commands(self, queue_id: str, producer: str | None) -> list[dict[str, Any]]:
        """The commands waiting for the worker `producer` of `queue_id`; raises QueueNotFound."""
        queue = await self._store.get(queue_id)
        if queue is None:
            raise QueueNotFound(queue_id)
        step = queue.step_by_producer(producer) if producer else None
        if not worker_must_stop(queue, step):
            return []
        return [
            {
                CommandField.QUEUE_ID: queue.id,
                CommandField.COMMAND: CommandName.STOP.value,
                CommandField.PAYLOAD: {},
            }
        ]
