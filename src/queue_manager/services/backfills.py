"""Backfill use cases (docs/schedules.md#backfill): start the parent and its children, stop them
all, retry the children that did not finish. The parent is a queue without steps whose status
and progress the engine recounts whenever a child changes status."""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING

import structlog

from queue_manager.domain import backfill, history, state
from queue_manager.domain.errors import Conflict
from queue_manager.domain.history import EventKind, QueueEvent
from queue_manager.domain.models import QueueState, QueueStatus
from queue_manager.domain.requests import same_request
from queue_manager.services.engine import now

if TYPE_CHECKING:
    from queue_manager.services.queues import QueueService

log = structlog.get_logger(__name__)


async def start(
    queues: QueueService,
    request: backfill.BackfillRequest,
    idempotency_key: str | None,
    actor: str | None,
    resubmitted_from: str | None = None,
) -> QueueState:
    at = now()
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
    created = QueueEvent(
        at=at,
        kind=EventKind.QUEUE_STATUS,
        to=parent.status,
        message=message,
        actor=history.api_actor(actor),
    )
    history.number(parent, [created])
    children = [
        queues.prepare(
            child,
            actor,
            queued=True,
            why=f"child of backfill {parent.id}",
            parent=parent.id,
            max_parallel=parent.backfill.max_parallel,
        )
        for child in request.child_requests()
    ]
    await queues.d.bus.ping()
    stored, fresh = await queues.d.store.insert(parent, idempotency_key, [created])
    if not fresh:
        assert idempotency_key is not None
        same_request(stored, parent, idempotency_key)
        return stored
    # Children after the parent: a crash in between leaves a parent short of children, which
    # its count (`children`) shows; never a child without its parent.
    for queue, event in children:
        await queues.d.store.insert(queue, None, [event])
    queues.engine.publish(parent, set())
    log.info(
        "backfill created",
        queue_id=parent.id,
        children=len(children),
        max_parallel=parent.backfill.max_parallel,
        actor=actor,
    )
    for queue, _ in children:
        await queues.launched(queue, actor)
    return await queues.get(parent.id)


async def resubmit(queues: QueueService, parent: QueueState, *, actor: str | None) -> QueueState:
    """A new backfill (parent and children) from the same request as an ended one."""
    assert parent.request is not None
    request = backfill.parse_backfill(parent.request)
    return await start(queues, request, None, actor, resubmitted_from=parent.id)


async def _children(queues: QueueService, parent_id: str) -> list[QueueState]:
    found: list[QueueState] = []
    cursor = None
    while True:
        page = await queues.page(
            status=None, symbol=None, limit=500, cursor=cursor, parent=parent_id
        )
        found += page.items
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


async def stop(
    queues: QueueService, parent: QueueState, *, force: bool, actor: str | None
) -> QueueState:
    """Stop the parent and every child that has not ended, the waiting ones first so that none
    of them is admitted meanwhile."""
    if parent.status is QueueStatus.STOPPED:
        return parent
    grace = queues.d.stop_grace
    who = history.api_actor(actor)
    await queues.engine.apply(
        parent.id, lambda q: state.request_stop(q, now(), grace, actor), actor=who
    )
    children = await _children(queues, parent.id)
    order = sorted(children, key=lambda c: c.status is not QueueStatus.QUEUED)
    for child in order:
        if child.status.terminal:
            continue
        with contextlib.suppress(Conflict):  # it ended meanwhile
            await queues.stop(child.id, force=force, actor=actor)
    await queues.engine.refresh_parent(parent.id)
    log.info("backfill stop requested", queue_id=parent.id, force=force, actor=actor)
    return await queues.get(parent.id)


async def retry(queues: QueueService, parent: QueueState, *, actor: str | None) -> QueueState:
    """Retry each child that ended without finishing; finished children are kept."""
    if parent.status not in (QueueStatus.ERROR, QueueStatus.STOPPED):
        raise Conflict(
            f"Queue {parent.id} is {parent.status.value}; only an error or stopped backfill "
            "can be retried",
            data={"queue_id": parent.id, "status": parent.status.value},
        )
    unfinished = [
        c
        for c in await _children(queues, parent.id)
        if c.status in (QueueStatus.ERROR, QueueStatus.STOPPED)
    ]
    for child in unfinished:
        await queues.retry(child.id, actor=actor)
    await queues.engine.recount_parent(
        parent.id,
        lambda q, children: backfill.reopen(q, children, len(unfinished), now()),
        actor=history.api_actor(actor),
    )
    log.info("backfill retried", queue_id=parent.id, children=len(unfinished), actor=actor)
    return await queues.get(parent.id)
