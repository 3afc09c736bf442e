"""Use cases a client drives: start, stop, read and list queues."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from pydantic import ValidationError

from queue_manager.domain import history, planner, state
from queue_manager.domain.errors import Conflict, InvalidRequest, QueueNotFound
from queue_manager.domain.history import EventKind, QueueEvent
from queue_manager.domain.models import QueueState, QueueStatus, Target
from queue_manager.domain.requests import (
    PipelineCreate,
    QueueCreate,
    image_errors,
    parse_request,
    same_request,
)
from queue_manager.domain.retry import RetryPolicy
from queue_manager.job_contract import CommandName
from queue_manager.ports import Bus, Clock, Command, Page, ServiceMetrics, StateStore
from queue_manager.services.engine import Engine
from queue_manager.services.stop_deadlines import StopDeadlines

log = structlog.get_logger(__name__)


class QueueService:
    """The queues a client starts (one step or a pipeline). A backfill's parent is not one of
    them: services/backfills.py, which uses this service, takes every command for it."""

    def __init__(
        self,
        engine: Engine,
        deadlines: StopDeadlines,
        *,
        store: StateStore,
        bus: Bus,
        metrics: ServiceMetrics,
        clock: Clock,
        stop_grace: timedelta,
        allowed_images: frozenset[str] = frozenset(),
        max_running_queues: int | None = None,
        loader_types: Mapping[str, str] = planner.DEFAULT_LOADER_TYPES,
        retry_defaults: Mapping[Target, RetryPolicy] | None = None,
    ) -> None:
        """`allowed_images`: ALLOWED_IMAGES; `max_running_queues`: MAX_RUNNING_QUEUES (every
        queue then waits for admission); `loader_types`: the loader's data type for each
        single-form shorthand (LOADER_TYPES); `retry_defaults`: RETRY_DEFAULTS."""
        self.engine = engine
        self.deadlines = deadlines
        self.store = store
        self.bus = bus
        self.metrics = metrics
        self.clock = clock
        self.stop_grace = stop_grace
        self.allowed_images = allowed_images
        self.max_running_queues = max_running_queues
        self.loader_types = loader_types
        self.retry_defaults = retry_defaults or {}

    async def start(
        self,
        request: QueueCreate | PipelineCreate,
        idempotency_key: str | None = None,
        actor: str | None = None,
        resubmitted_from: str | None = None,
    ) -> QueueState:
        queue, created_event = self.prepare(request, actor, resubmitted_from=resubmitted_from)
        # A start the workers could never hear about must not be accepted: fail fast with 503.
        await self.bus.ping()
        stored, created = await self.store.insert(queue, idempotency_key, [created_event])
        if not created:
            assert idempotency_key is not None
            same_request(stored, queue, idempotency_key)
            log.info("idempotent start replayed", queue_id=stored.id)
            return stored
        await self.launched(stored, actor)
        return await self.store.get(stored.id) or stored

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
        queue = planner.plan(request, str(uuid.uuid4()), self.loader_types, self.retry_defaults)
        # The service's clock, not the model's default (the system's): one time for everything.
        queue.created_at = queue.updated_at = self.clock.now()
        for name, value in fields.items():
            setattr(queue, name, value)
        queue.created_by = actor
        queue.resubmitted_from = resubmitted_from
        queue.request = request.model_dump(mode="json", exclude_none=True)
        message = why or (f"resubmitted from {resubmitted_from}" if resubmitted_from else "created")
        limit = self.max_running_queues
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
        errors = image_errors(request, self.allowed_images, prefix)
        if errors:
            raise InvalidRequest(errors)

    async def launched(self, stored: QueueState, actor: str | None) -> None:
        """What follows a stored start: count, tell the clients, admit or launch, command."""
        self.metrics.queue_started()
        log.info(
            "queue created",
            queue_id=stored.id,
            steps=len(stored.steps),
            symbol=stored.symbol,
            actor=actor,
        )
        self.engine.publish(stored, {s.index for s in stored.steps})
        await self._run(stored)
        await self.bus.send_command(
            Command(
                queue_id=stored.id,
                command=CommandName.START,
                command_id=str(uuid.uuid4()),
                sent_at=self.clock.now().isoformat(),
            )
        )

    async def stop(
        self, queue_id: str, *, force: bool = False, actor: str | None = None
    ) -> QueueState:
        current = await self.get(queue_id)
        if current.status in (QueueStatus.FINISHED, QueueStatus.ERROR):
            state.request_stop(current, self.clock.now(), self.stop_grace)  # raises the 409
        if current.status is QueueStatus.STOPPED:
            return current
        # Command first: if the bus is down the client gets 503 and nothing has changed.
        await self.engine.send_stop(queue_id)
        who = history.api_actor(actor)
        queue, _ = await self.engine.apply(
            queue_id,
            lambda q: state.request_stop(q, self.clock.now(), self.stop_grace, actor),
            actor=who,
        )
        if queue is None:
            raise QueueNotFound(queue_id)
        if force:
            queue, _ = await self.engine.apply(
                queue_id, lambda q: state.force_deadline(q, self.clock.now()), actor=who
            )
            await self.deadlines.reap(queue_id)
        elif queue.stop_deadline is not None:
            self.deadlines.watch(queue_id, queue.stop_deadline)
        log.info("stop requested", queue_id=queue_id, force=force, actor=actor)
        return await self.get(queue_id)

    async def retry(
        self, queue_id: str, *, from_step: int | None = None, actor: str | None = None
    ) -> QueueState:
        """Run again what did not finish; finished steps keep their outputs (docs/api.md)."""
        queued = self.max_running_queues is not None
        queue, _ = await self.engine.apply(
            queue_id,
            lambda q: state.retry(
                q, self.clock.now(), from_step, queued=queued or q.parent is not None
            ),
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
        order = await self.store.queued_order()
        return {queue_id: n for n, queue_id in enumerate(order, start=1)}

    async def resubmit(self, queue_id: str, *, actor: str | None = None) -> QueueState:
        """A new queue from the same request, for any queue that has ended."""
        return await self.restart(await self.resubmittable(queue_id), actor=actor)

    async def resubmittable(self, queue_id: str) -> QueueState:
        """The queue, when it has ended and its request was kept (else a 409 saying which)."""
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
        return original

    async def restart(self, original: QueueState, *, actor: str | None) -> QueueState:
        """A new queue from the request of `original` (a `resubmittable` one)."""
        assert original.request is not None
        with request_still_valid(original.id):
            request = parse_request(original.request)
            return await self.start(request, actor=actor, resubmitted_from=original.id)

    async def get(self, queue_id: str) -> QueueState:
        queue = await self.store.get(queue_id)
        if queue is None:
            raise QueueNotFound(queue_id)
        return queue

    async def events(self, queue_id: str, *, after: int, limit: int) -> list[QueueEvent]:
        events = await self.store.events(queue_id, after=after, limit=limit)
        if not events and await self.store.get_json(queue_id) is None:
            raise QueueNotFound(queue_id)
        return events

    async def get_json(self, queue_id: str) -> bytes:
        raw = await self.store.get_json(queue_id)
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
        id_prefix: str | None = None,
        top_level: bool = False,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> Page:
        """`created_from`/`created_to` without a zone are UTC; a range that ends before it
        starts is a 422 naming `created_to`."""
        created_from, created_to = utc(created_from), utc(created_to)
        if created_from is not None and created_to is not None and created_to < created_from:
            message = f"must not be before created_from ({created_from.isoformat()})"
            raise InvalidRequest([{"field": "created_to", "message": message}])
        return await self.store.page(
            status=status,
            symbol=symbol,
            limit=limit,
            cursor=cursor,
            parent=parent,
            id_prefix=id_prefix,
            top_level=top_level,
            created_from=created_from,
            created_to=created_to,
        )


def utc(at: datetime | None) -> datetime | None:
    """An instant in UTC (the stores compare UTC text); one without a zone is taken as UTC."""
    if at is None:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


@contextmanager
def request_still_valid(queue_id: str) -> Iterator[None]:
    """A 409 for a stored request that is refused today: the stored request, not the caller's,
    was valid then and is not under today's rules (an image no longer in ALLOWED_IMAGES, say)."""
    try:
        yield
    except (ValidationError, InvalidRequest) as exc:
        errors = exc.errors if isinstance(exc, InvalidRequest) else []
        problems = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise Conflict(
            f"Queue {queue_id}'s request is no longer valid"
            + (f" ({problems})" if problems else "")
            + "; start a new one",
            data={"queue_id": queue_id, "errors": errors},
        ) from None
