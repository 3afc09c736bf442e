"""How each record is held in SQLite: a queue is its JSON (`doc`, the same JSON as the ArangoDB
document) beside the columns the indexes read — `status`, `symbol`, `created` (sort-key text),
`priority`, `parent` and `jobs`, the targets of its running steps (space-separated), which the
MAX_RUNNING_JOBS count reads instead of every document. A history event, a schedule and a
decided tick are their JSON; a token is its fields (`records.token_record`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from queue_manager.domain import admission, records
from queue_manager.domain.history import QueueEvent
from queue_manager.domain.identity import ApiToken
from queue_manager.domain.models import QueueState
from queue_manager.domain.schedules import Schedule, ScheduleRun


def dump(queue: QueueState) -> bytes:
    return queue.model_dump_json().encode()


def load(doc: bytes | str) -> QueueState:
    return QueueState.model_validate_json(doc)


def jobs(queue: QueueState) -> str:
    return " ".join(admission.running_jobs(queue))


def queue_row(queue: QueueState) -> tuple[Any, ...]:
    """The values of `queries.INSERT_QUEUE`."""
    return (
        queue.id,
        queue.status.value,
        queue.symbol,
        records.sort_key(queue.created_at),
        dump(queue),
        queue.priority,
        jobs(queue),
        queue.parent or "",
    )


def change_row(queue: QueueState) -> tuple[Any, ...]:
    """The values of `queries.UPDATE_QUEUE`."""
    return (queue.status.value, dump(queue), queue.priority, jobs(queue), queue.id)


def event_rows(queue_id: str, events: Sequence[QueueEvent]) -> list[tuple[str, int, bytes]]:
    return [(queue_id, e.seq, e.model_dump_json().encode()) for e in events]


def load_event(doc: bytes | str) -> QueueEvent:
    return QueueEvent.model_validate_json(doc)


def load_schedule(doc: bytes | str) -> Schedule:
    return Schedule.model_validate_json(doc)


def run_row(run: ScheduleRun) -> tuple[str, str, bytes]:
    return run.schedule, records.sort_key(run.scheduled_for), run.model_dump_json().encode()


def load_run(doc: bytes | str) -> ScheduleRun:
    return ScheduleRun.model_validate_json(doc)


def token_row(token: ApiToken) -> tuple[Any, ...]:
    """The values of `queries.TOKEN_INSERT`: a token never used yet."""
    return tuple(records.token_record(token)[f] for f in records.TOKEN_FIELDS[:-1])


def load_token(row: Any) -> ApiToken:
    return records.token_from_record(dict(zip(records.TOKEN_FIELDS, row, strict=True)))
