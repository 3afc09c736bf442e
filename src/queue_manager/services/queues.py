"""Use cases a client drives: start, stop, read and list queues."""

from __future__ import annotations

import uuid

import structlog

from queue_manager.domain import history, planner, state
from queue_manager.domain.errors import Conflict, QueueNotFound
from queue_manager.domain.history import EventKind, QueueEvent
from queue_manager.domain.models import QueueState, QueueStatus
from queue_manager.domain.requests import PipelineCreate, QueueCreate, parse_request
from queue_manager.job_contract import CommandName
from queue_manager.ports import Command, Page
from queue_manager.services.engine import Engine, now

log = structlog.get_logger(__name__)


class QueueService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.d = engine.d

    async def start(
        self,
        request: QueueCreate | PipelineCreate,
        idempotency_key: str | None = None,
        actor: str | None = None,
        resubmitted_from: str | None = None,
    ) -> QueueState:
        queue = planner.plan(request, str(uuid.uuid4()))
        queue.created_by = actor
        queue.resubmitted_from = resubmitted_from
        queue.request = request.model_dump(mode="json", exclude_none=True)
        message = f"resubmitted from {resubmitted_from}" if resubmitted_from else "created"
        limit = self.d.limits.queues
        if limit is not None:
            # Every queue waits its turn, even when a slot is free: the store decides (admit).
            queue.queued_at = queue.created_at
            queue.status = QueueStatus.QUEUED
            message += f"; waits for admission (MAX_RUNNING_QUEUES={limit})"
        created_event = QueueEvent(
            at=queue.created_at,
            kind=EventKind.QUEUE_STATUS,
            to=queue.status,
            message=message,
            actor=history.api_actor(actor),
        )
        history.number(queue, [created_event])
        # A start the workers could never hear about must not be accepted: fail fast with 503.
        await self.d.bus.ping()
        stored, created = await self.d.store.insert(queue, idempotency_key, [created_event])
        if not created:
            log.info("idempotent start replayed", queue_id=stored.id)
            return stored
        self.d.metrics.queue_started()
        log.info(
            "queue created",
            queue_id=stored.id,
            steps=len(stored.steps),
            symbol=stored.symbol,
            actor=actor,
        )
        self.engine.publish(stored, {s.index for s in stored.steps})
        await self._run(stored)
        await self.d.bus.send_command(
            Command(
                queue_id=stored.id,
                command=CommandName.START,
                command_id=str(uuid.uuid4()),
                sent_at=now().isoformat(),
            )
        )
        return await self.d.store.get(stored.id) or stored

    async def stop(
        self, queue_id: str, *, force: bool = False, actor: str | None = None
    ) -> QueueState:
        current = await self.get(queue_id)
        if current.status in (QueueStatus.FINISHED, QueueStatus.ERROR):
            state.request_stop(current, now(), self.d.stop_grace)  # raises the 409
        if current.status is QueueStatus.STOPPED:
            return current
        # Command first: if the bus is down the client gets 503 and nothing has changed.
        await self.engine.send_stop(queue_id)
        who = history.api_actor(actor)
        queue, _ = await self.engine.apply(
            queue_id, lambda q: state.request_stop(q, now(), self.d.stop_grace, actor), actor=who
        )
        if queue is None:
            raise QueueNotFound(queue_id)
        if force:
            queue, _ = await self.engine.apply(
                queue_id, lambda q: state.force_deadline(q, now()), actor=who
            )
            await self.engine.reap(queue_id)
        elif queue.stop_deadline is not None:
            delay = (queue.stop_deadline - now()).total_seconds()
            self.engine.schedule_reap(queue_id, delay)
        log.info("stop requested", queue_id=queue_id, force=force, actor=actor)
        return await self.get(queue_id)

    async def retry(
        self, queue_id: str, *, from_step: int | None = None, actor: str | None = None
    ) -> QueueState:
        """Run again what did not finish; finished steps keep their outputs (docs/api.md)."""
        queued = self.d.limits.queues is not None
        queue, _ = await self.engine.apply(
            queue_id,
            lambda q: state.retry(q, now(), from_step, queued=queued),
            actor=history.api_actor(actor),
        )
        if queue is None:
            raise QueueNotFound(queue_id)
        log.info("queue retried", queue_id=queue_id, from_step=from_step, actor=actor)
        await self._run(queue)
        return await self.get(queue_id)

    async def _run(self, queue: QueueState) -> None:
        if queue.status is QueueStatus.QUEUED:
            await self.engine.admit()
        else:
            await self.engine.advance(queue.id)

    async def positions(self, queues: list[QueueState]) -> dict[str, int]:
        """Where each `queued` queue stands in the admission order (1 = next)."""
        if not any(q.status is QueueStatus.QUEUED for q in queues):
            return {}
        order = await self.d.store.queued_order()
        return {queue_id: n for n, queue_id in enumerate(order, start=1)}

    async def resubmit(self, queue_id: str, *, actor: str | None = None) -> QueueState:
        """A new queue from the same request, for any queue that has ended."""
        original = await self.get(queue_id)
        if not original.status.terminal:
            raise Conflict(
                f"Queue {queue_id} is {original.status.value}; only an ended queue can be "
                "resubmitted",
                data={"queue_id": queue_id, "status": original.status.value},
            )
        if original.request is None:
            raise Conflict(
                f"Queue {queue_id} was started before requests were kept; start it again",
                data={"queue_id": queue_id},
            )
        request = parse_request(original.request)
        return await self.start(request, actor=actor, resubmitted_from=queue_id)

    async def get(self, queue_id: str) -> QueueState:
        queue = await self.d.store.get(queue_id)
        if queue is None:
            raise QueueNotFound(queue_id)
        return queue

    async def events(self, queue_id: str, *, after: int, limit: int) -> list[QueueEvent]:
        events = await self.d.store.events(queue_id, after=after, limit=limit)
        if not events and await self.d.store.get_json(queue_id) is None:
            raise QueueNotFound(queue_id)
        return events

    async def get_json(self, queue_id: str) -> bytes:
        raw = await self.d.store.get_json(queue_id)
        if raw is None:
            raise QueueNotFound(queue_id)
        return raw

    async def page(
        self,
        *,
        status: QueueStatus | None,
        symbol: str | None,
        limit: int,
        cursor: str | None,
    ) -> Page:
        return await self.d.store.page(status=status, symbol=symbol, limit=limit, cursor=cursor)
