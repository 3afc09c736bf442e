"""Use cases a client drives: start, stop, read and list queues."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import structlog
from pydantic import ValidationError

from queue_manager.domain import history, planner, state
from queue_manager.domain.backfill import BackfillRequest
from queue_manager.domain.errors import Conflict, InvalidRequest, QueueNotFound
from queue_manager.domain.history import EventKind, QueueEvent
from queue_manager.domain.models import QueueState, QueueStatus
from queue_manager.domain.requests import (
    PipelineCreate,
    QueueCreate,
    image_errors,
    parse_request,
    same_request,
)
from queue_manager.job_contract import CommandName
from queue_manager.ports import Command, Page
from queue_manager.services import backfills
from queue_manager.services.engine import Engine, now

log = structlog.get_logger(__name__)


class QueueService:
    def __init__(
        self, engine: Engine, loader_types: Mapping[str, str] = planner.DEFAULT_LOADER_TYPES
    ) -> None:
        """`loader_types`: the loader's data type for each single-form shorthand (LOADER_TYPES)."""
        self.engine = engine
        self.d = engine.d
        self.loader_types = loader_types

    async def start(
        self,
        request: QueueCreate | PipelineCreate,
        idempotency_key: str | None = None,
        actor: str | None = None,
        resubmitted_from: str | None = None,
    ) -> QueueState:
        queue, created_event = self.prepare(request, actor, resubmitted_from=resubmitted_from)
        # A start the workers could never hear about must not be accepted: fail fast with 503.
        await self.d.bus.ping()
        stored, created = await self.d.store.insert(queue, idempotency_key, [created_event])
        if not created:
            assert idempotency_key is not None
            same_request(stored, queue, idempotency_key)
            log.info("idempotent start replayed", queue_id=stored.id)
            return stored
        await self.launched(stored, actor)
        return await self.d.store.get(stored.id) or stored

    def prepare(
        self,
        request: QueueCreate | PipelineCreate,
        actor: str | None,
        *,
        resubmitted_from: str | None = None,
        why: str | None = None,
        queued: bool = False,
        event_actor: str | None = None,
        **fields: Any,
    ) -> tuple[QueueState, QueueEvent]:
        """The queue a request makes, with its first history event, before it is stored.
        `fields` (schedule, parent...) are set on it; `queued`: it waits for admission even
        without MAX_RUNNING_QUEUES (a backfill's child). Every queue a client, a schedule or a
        backfill starts is made here: what the service's settings forbid is refused here."""
        self.check_images(request)
        queue = planner.plan(request, str(uuid.uuid4()), self.loader_types)
        for name, value in fields.items():
            setattr(queue, name, value)
        queue.created_by = actor
        queue.resubmitted_from = resubmitted_from
        queue.request = request.model_dump(mode="json", exclude_none=True)
        message = why or (f"resubmitted from {resubmitted_from}" if resubmitted_from else "created")
        limit = self.d.limits.queues
        if limit is not None or queued:
            # Every queue waits its turn, even when a slot is free: the store decides (admit).
            queue.queued_at = queue.created_at
            queue.status = QueueStatus.QUEUED
            if limit is not None:
                message += f"; waits for admission (MAX_RUNNING_QUEUES={limit})"
            else:
                message += "; waits for admission"
        created_event = QueueEvent(
            at=queue.created_at,
            kind=EventKind.QUEUE_STATUS,
            to=queue.status,
            message=message,
            actor=event_actor or history.api_actor(actor),
        )
        history.number(queue, [created_event])
        return queue, created_event

    def check_images(self, request: QueueCreate | PipelineCreate, prefix: str = "") -> None:
        """422 naming `requests.<i>.image` for an image outside ALLOWED_IMAGES."""
        errors = image_errors(request, self.d.jobs.allowed_images, prefix)
        if errors:
            raise InvalidRequest(errors)

    async def launched(self, stored: QueueState, actor: str | None) -> None:
        """What follows a stored start: count, tell the clients, admit or launch, command."""
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

    async def backfill(
        self, request: BackfillRequest, idempotency_key: str | None = None, actor: str | None = None
    ) -> QueueState:
        return await backfills.start(self, request, idempotency_key, actor)

    async def stop(
        self, queue_id: str, *, force: bool = False, actor: str | None = None
    ) -> QueueState:
        current = await self.get(queue_id)
        if current.backfill is not None:
            return await backfills.stop(self, current, force=force, actor=actor)
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
        current = await self.get(queue_id)
        if current.backfill is not None:
            return await backfills.retry(self, current, actor=actor)
        queued = self.d.limits.queues is not None
        queue, _ = await self.engine.apply(
            queue_id,
            lambda q: state.retry(q, now(), from_step, queued=queued or q.parent is not None),
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
        try:
            if original.backfill is not None:
                return await backfills.resubmit(self, original, actor=actor)
            request = parse_request(original.request)
            return await self.start(request, actor=actor, resubmitted_from=queue_id)
        except (ValidationError, InvalidRequest) as exc:
            # The stored request, not the caller's: valid then, not under today's rules (an
            # image no longer in ALLOWED_IMAGES, say).
            errors = exc.errors if isinstance(exc, InvalidRequest) else []
            problems = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
            raise Conflict(
                f"Queue {queue_id}'s request is no longer valid"
                + (f" ({problems})" if problems else "")
                + "; start a new one",
                data={"queue_id": queue_id, "errors": errors},
            ) from None

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
        parent: str | None = None,
    ) -> Page:
        return await self.d.store.page(
            status=status, symbol=symbol, limit=limit, cursor=cursor, parent=parent
        )
