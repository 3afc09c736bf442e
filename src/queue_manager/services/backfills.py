"""Backfill use cases (docs/schedules.md#backfill): start the parent and its children, stop them
all, retry the children that did not finish. The parent is a queue without steps whose status
and progress the engine recounts whenever a child changes status.

A backfill is made of queues, so this service uses the queue service (never the other way
round). A client's stop, retry or resubmit may name a parent or any other queue: they come
here, and what is not a parent goes on to the queue service.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from datetime import timedelta

import structlog

from queue_manager.domain import backfill, history, state
from queue_manager.domain.errors import Conflict
from queue_manager.domain.history import EventKind, QueueEvent
from queue_manager.domain.models import QueueState, QueueStatus
from queue_manager.domain.requests import StartRequest, same_request
from queue_manager.ports import Bus, Clock, StateStore
from queue_manager.services.engine import Engine
from queue_manager.services.queues import QueueService, request_still_valid

log = structlog.get_logger(__name__)


class BackfillService:
    def __init__(
        self,
        queues: QueueService,
        engine: Engine,
        *,
        store: StateStore,
        bus: Bus,
        clock: Clock,
        stop_grace: timedelta,
    ) -> None:
        self.queues = queues
        self.engine = engine
        self.store = store
        self.bus = bus
        self.clock = clock
        self.stop_grace = stop_grace

    # -- any queue: a parent's commands are the backfill's, the others the queue service's ---

    async def stop(
        self, queue_id: str, *, force: bool = False, actor: str | None = None
    ) -> QueueState:
        current = await self.queues.get(queue_id)
        if current.backfill is None:
            return await self.queues.stop(queue_id, force=force, actor=actor)
        return await self._stop(current, force=force, actor=actor)

    async def retry(
        self, queue_id: str, *, from_step: int | None = None, actor: str | None = None
    ) -> QueueState:
        current = await self.queues.get(queue_id)
        if current.backfill is None:
            return await self.queues.retry(queue_id, from_step=from_step, actor=actor)
        return await self._retry(current, actor=actor)

    async def resubmit(self, queue_id: str, *, actor: str | None = None) -> QueueState:
        original = await self.queues.resubmittable(queue_id)
        if original.backfill is None:
            return await self.queues.restart(original, actor=actor)
        assert original.request is not None
        with request_still_valid(queue_id):
            # A new backfill (parent and children) from the same request as the ended one.
            request = backfill.parse_backfill(original.request)
            return await self.start(request, None, actor, resubmitted_from=original.id)

    # -- backfills ------------------------------------------------------------------------

    async def start(
        self,
        request: backfill.BackfillRequest,
        idempotency_key: str | None = None,
        actor: str | None = None,
        resubmitted_from: str | None = None,
    ) -> QueueState:
        at = self.clock.now()
        parent = request.parent(str(uuid.uuid4()), at)
        parent.created_by = actor
        parent.resubmitted_from = resubmitted_from
        assert parent.backfill is not None
        message = (
            f"backfill of {parent.backfill.children} child queues by {parent.backfill.chunk}"
            f", {parent.backfill.max_parallel} at a time"
        )
        if resubmitted_from is not None:
            message += f"; resubmitted from {resubmitted_from}"
        return await self._create(parent, request.child_requests(), message, idempotency_key, actor)

    async def start_chunks(
        self, parent: QueueState, children: Sequence[StartRequest], message: str, actor: str | None
    ) -> QueueState:
        """A backfill of exactly these children, which `parent` counts (a coverage fill runs
        only the chunks its plan found, docs/coverage.md)."""
        parent.created_by = actor
        return await self._create(parent, children, message, None, actor)

    async def _create(
        self,
        parent: QueueState,
        child_requests: Sequence[StartRequest],
        message: str,
        idempotency_key: str | None,
        actor: str | None,
    ) -> QueueState:
        at = parent.created_at
        assert parent.backfill is not None
        created = QueueEvent(
            at=at,
            kind=EventKind.QUEUE_STATUS,
            to=parent.status,
            message=message,
            actor=history.api_actor(actor),
        )
        history.number(parent, [created])
        children = [
            self.queues.prepare(
                child,
                actor,
                queued=True,
                why=f"child of backfill {parent.id}",
                parent=parent.id,
                max_parallel=parent.backfill.max_parallel,
            )
            for child in child_requests
        ]
        await self.bus.ping()
        stored, fresh = await self.store.insert(parent, idempotency_key, [created])
        if not fresh:
            assert idempotency_key is not None
            same_request(stored, parent, idempotency_key)
            return stored
        # Children after the parent: a crash in between leaves a parent short of children, which
        # its count (`children`) shows; never a child without its parent.
        for queue, event in children:
            await self.store.insert(queue, None, [event])
        self.engine.publish(parent, set())
        log.info(
            "backfill created",
            queue_id=parent.id,
            children=len(children),
            max_parallel=parent.backfill.max_parallel,
            actor=actor,
        )
        for queue, _ in children:
            await self.queues.launched(queue, actor)
        return await self.queues.get(parent.id)

    async def _children(self, parent_id: str) -> list[QueueState]:
        found: list[QueueState] = []
        cursor = None
        while True:
            page = await self.queues.page(
                status=None, symbol=None, limit=500, cursor=cursor, parent=parent_id
            )
            found += page.items
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor

    async def _stop(self, parent: QueueState, *, force: bool, actor: str | None) -> QueueState:
        """Stop the parent and every child that has not ended, the waiting ones first so that
        none of them is admitted meanwhile."""
        if parent.status is QueueStatus.STOPPED:
            return parent
        grace = self.stop_grace
        who = history.api_actor(actor)
        await self.engine.apply(
            parent.id, lambda q: state.request_stop(q, self.clock.now(), grace, actor), actor=who
        )
        children = await self._children(parent.id)
        order = sorted(children, key=lambda c: c.status is not QueueStatus.QUEUED)
        for child in order:
            if child.status.terminal:
                continue
            with contextlib.suppress(Conflict):  # it ended meanwhile
                await self.queues.stop(child.id, force=force, actor=actor)
        await self.engine.refresh_parent(parent.id)
        log.info("backfill stop requested", queue_id=parent.id, force=force, actor=actor)
        return await self.queues.get(parent.id)

    async def _retry(self, parent: QueueState, *, actor: str | None) -> QueueState:
        """Retry each child that ended without finishing; finished children are kept."""
        if parent.status not in (QueueStatus.ERROR, QueueStatus.STOPPED):
            raise Conflict(
                f"Queue {parent.id} is {parent.status.value}; only an error or stopped backfill "
                "can be retried",
                data={"queue_id": parent.id, "status": parent.status.value},
            )
        unfinished = [
            c
            for c in await self._children(parent.id)
            if c.status in (QueueStatus.ERROR, QueueStatus.STOPPED)
        ]
        for child in unfinished:
            await self.queues.retry(child.id, actor=actor)
        await self.engine.recount_parent(
            parent.id,
            lambda q, children: backfill.reopen(q, children, len(unfinished), self.clock.now()),
            actor=history.api_actor(actor),
        )
        log.info("backfill retried", queue_id=parent.id, children=len(unfinished), actor=actor)
        return await self.queues.get(parent.id)
