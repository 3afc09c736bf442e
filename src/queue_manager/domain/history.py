"""A queue's history (docs/api.md, `GET /queues/{id}/events`): one event per transition.

The state machine records events as it changes a queue; the store writes them in the same
transaction as the queue, so history and state never disagree. Progress (`records_written`
growing) is state, not history: the history stays short enough to read.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from queue_manager.domain.models import QueueState


class EventKind(StrEnum):
    QUEUE_STATUS = "queue.status"
    STEP_STATUS = "step.status"
    #: a job restarted by its own retry policy (backoffLimit, local restarts)
    STEP_ATTEMPT = "step.attempt"
    #: a recoverable error a worker reported (`error` with `finished: false`): the step goes on
    STEP_WARNING = "step.warning"
    COMMAND = "command"
    ADMISSION = "admission"
    #: what a schedule did about a run: started it, skipped a tick because of it, replaced it
    SCHEDULE = "schedule"
    #: a rate-limited failure of one of its steps opened its rate-limit group's breaker
    RATE_LIMIT = "rate_limit"


class QueueEvent(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    #: 1, 2, 3, ... per queue, in the order the changes were stored
    seq: int = 0
    at: datetime
    kind: EventKind
    step: int | None = None
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    message: str | None = None
    #: `api:<principal>`, `telemetry:<producer>`, `reconciler`, `launcher`, `scheduler`
    actor: str = ""


def api_actor(principal: str | None) -> str:
    return f"api:{principal or 'anonymous'}"


def stamp(events: Iterable[QueueEvent], actor: str) -> None:
    """Name who caused the events that no more specific actor claimed."""
    for event in events:
        if not event.actor:
            event.actor = actor


def number(queue: QueueState, events: Iterable[QueueEvent]) -> None:
    """Give the events the queue's next sequence numbers (the store writes both together)."""
    for event in events:
        queue.event_seq += 1
        event.seq = queue.event_seq
