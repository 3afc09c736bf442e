"""Embedded mode (docs/worker-protocol.md): what local workers reporting over HTTP may do —
hand in telemetry and learn whether they must stop — and for how long their credential holds."""

from __future__ import annotations

from typing import Any

from queue_manager.domain.errors import QueueNotFound
from queue_manager.domain.stalls import pinged
from queue_manager.domain.state import run_over, worker_must_stop
from queue_manager.job_contract import CommandField, CommandName
from queue_manager.ports import Bus, StateStore


class WorkerReports:
    def __init__(self, store: StateStore, bus: Bus) -> None:
        self._store = store
        self._bus = bus

    async def refusal(self, queue_id: str, producer: str) -> str | None:
        """Why the worker of step run `producer` may no longer speak for `queue_id` (its run
        ended, or a newer run replaced it); None while it may. Raises QueueNotFound."""
        queue = await self._store.get(queue_id)
        if queue is None:
            raise QueueNotFound(queue_id)
        return run_over(queue, producer)

    async def accept_telemetry(self, raw: bytes) -> None:
        # Through the bus, like Kafka telemetry: one dispatcher applies everything.
        await self._bus.send_telemetry(raw)

    async def commands(self, queue_id: str, producer: str) -> list[dict[str, Any]]:
        """The commands waiting for the worker `producer` of `queue_id`; raises QueueNotFound."""
        queue = await self._store.get(queue_id)
        if queue is None:
            raise QueueNotFound(queue_id)
        step = queue.step_by_producer(producer)
        if not worker_must_stop(queue, step):
            # A silent step's worker is pinged until it answers (domain/stalls.py).
            if step is not None and pinged(step) is not None:
                return [_command(queue.id, CommandName.PING)]
            return []
        return [_command(queue.id, CommandName.STOP)]


def _command(queue_id: str, name: CommandName) -> dict[str, Any]:
    return {
        CommandField.QUEUE_ID: queue_id,
        CommandField.COMMAND: name.value,
        CommandField.PAYLOAD: {},
    }
