"""How a queue is held in ArangoDB: QueueState's JSON plus `_key` (the queue id) and `created`
(fixed-width UTC text, see `cursor.sort_key`), the list helper the indexes sort on. Every field
of QueueState is a top-level attribute, so the indexes and filters read `status`, `parent`,
`schedule` directly.

A schedule is its JSON plus `_key` (its name); a decided tick is `schedule`, `scheduled_for`
(sort-key text) and `run` (the ScheduleRun's JSON), keyed by `run_key`."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import ValidationError

from queue_manager.adapters import cursor as cursors
from queue_manager.adapters.arango_store.queries import (
    QUEUE_COLLECTION,
    RUNS_COLLECTION,
    SCHEDULES_COLLECTION,
)
from queue_manager.domain.errors import DependencyUnavailable
from queue_manager.domain.models import QueueState
from queue_manager.domain.schedules import Schedule, ScheduleRun

#: attributes the store adds around QueueState's JSON; stripped when loading
_STORE_FIELDS: Final = frozenset({"_key", "_id", "_rev", "created"})
#: ArangoDB's own attributes, around a schedule's JSON
_SYSTEM_FIELDS: Final = frozenset({"_key", "_id", "_rev"})

#: what ArangoDB accepts as a document key; anything else cannot name a stored queue
_VALID_KEY = re.compile(r"^[A-Za-z0-9_\-:.@()+,=;$!*'%]{1,254}$")


def valid_key(queue_id: str) -> bool:
    return _VALID_KEY.match(queue_id) is not None


def document(queue: QueueState) -> dict[str, Any]:
    doc: dict[str, Any] = queue.model_dump(mode="json")
    doc["_key"] = queue.id
    doc["created"] = cursors.sort_key(queue.created_at)
    return doc


def load(doc: dict[str, Any]) -> QueueState:
    fields = {k: v for k, v in doc.items() if k not in _STORE_FIELDS}
    try:
        return QueueState.model_validate(fields)
    except ValidationError as exc:
        key = doc.get("_key")
        raise DependencyUnavailable(
            "store", f"document {key} in {QUEUE_COLLECTION} is not a valid queue: {exc}"
        ) from exc


def idempotency_key(key: str) -> str:
    """Any client string -> a valid, fixed-length document key."""
    return hashlib.sha256(key.encode()).hexdigest()


def schedule_document(schedule: Schedule, key: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = schedule.model_dump(mode="json")
    doc["_key"] = key if key is not None else schedule.name
    return doc


def load_schedule(doc: dict[str, Any]) -> Schedule:
    fields = {k: v for k, v in doc.items() if k not in _SYSTEM_FIELDS}
    try:
        return Schedule.model_validate(fields)
    except ValidationError as exc:
        key = doc.get("_key")
        raise DependencyUnavailable(
            "store", f"document {key} in {SCHEDULES_COLLECTION} is not a valid schedule: {exc}"
        ) from exc


def run_key(schedule: str, scheduled_for: datetime) -> str:
    """One key per (schedule, tick): the primary index lets a tick be decided only once."""
    return hashlib.sha256(f"{schedule}|{cursors.sort_key(scheduled_for)}".encode()).hexdigest()


def run_document(run: ScheduleRun) -> dict[str, Any]:
    return {
        "_key": run_key(run.schedule, run.scheduled_for),
        "schedule": run.schedule,
        "scheduled_for": cursors.sort_key(run.scheduled_for),
        "run": run.model_dump(mode="json"),
    }


def load_run(doc: Any) -> ScheduleRun:
    """A run document's `run` (what RUNS_OF returns)."""
    try:
        return ScheduleRun.model_validate(doc)
    except ValidationError as exc:
        raise DependencyUnavailable(
            "store", f"a document in {RUNS_COLLECTION} is not a valid run: {exc}"
        ) from exc


def from_sort_key(key: str) -> datetime:
    """`cursor.sort_key` read back."""
    try:
        return datetime.strptime(key, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except (TypeError, ValueError) as exc:
        raise DependencyUnavailable(
            "store", f"{RUNS_COLLECTION}: {key!r} is not a tick (sort-key text)"
        ) from exc
