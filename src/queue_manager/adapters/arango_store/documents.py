"""How each record is held in ArangoDB.

A queue is QueueState's JSON plus `_key` (the queue id) and two helpers the indexes read:
`created` (sort-key text, `records.sort_key`) and `jobs`, the targets of its running steps (null
when none), which the MAX_RUNNING_JOBS count reads through a sparse index instead of every
document — SQLite keeps the same two as columns. Every field of QueueState is a top-level
attribute, so the indexes and filters read `status`, `parent`, `schedule` directly.

Uniqueness always comes from `_key`, the shard key, never from a unique index (a cluster refuses
those on other attributes): a history event is keyed `<queue_id>:<seq>`, a decided tick by the
SHA-256 of (schedule, tick), an idempotency key by its own SHA-256, a token by its name and its
hash by a document of its own keyed by the hash.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from pydantic import ValidationError

from queue_manager.adapters.arango_store.queries import (
    QUEUE_COLLECTION,
    RUNS_COLLECTION,
    SCHEDULES_COLLECTION,
)
from queue_manager.domain import admission, records
from queue_manager.domain.errors import DependencyUnavailable
from queue_manager.domain.history import QueueEvent
from queue_manager.domain.identity import ApiToken
from queue_manager.domain.models import QueueState
from queue_manager.domain.schedules import Schedule, ScheduleRun

#: attributes the store adds around QueueState's JSON; stripped when loading
_STORE_FIELDS: Final = frozenset({"_key", "_id", "_rev", "created", "jobs"})
#: ArangoDB's own attributes, around a schedule's JSON
_SYSTEM_FIELDS: Final = frozenset({"_key", "_id", "_rev"})

#: what ArangoDB accepts as a document key; anything else cannot name a stored queue
_VALID_KEY = re.compile(r"^[A-Za-z0-9_\-:.@()+,=;$!*'%]{1,254}$")


def valid_key(queue_id: str) -> bool:
    return _VALID_KEY.match(queue_id) is not None


def document(queue: QueueState) -> dict[str, Any]:
    doc: dict[str, Any] = queue.model_dump(mode="json")
    doc["_key"] = queue.id
    doc["created"] = records.sort_key(queue.created_at)
    doc["jobs"] = admission.running_jobs(queue) or None
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


def event_documents(queue_id: str, events: Sequence[QueueEvent]) -> list[dict[str, Any]]:
    return [
        {**e.model_dump(mode="json"), "_key": f"{queue_id}:{e.seq}", "queue_id": queue_id}
        for e in events
    ]


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
    return hashlib.sha256(f"{schedule}|{records.sort_key(scheduled_for)}".encode()).hexdigest()


def run_document(run: ScheduleRun) -> dict[str, Any]:
    return {
        "_key": run_key(run.schedule, run.scheduled_for),
        "schedule": run.schedule,
        "scheduled_for": records.sort_key(run.scheduled_for),
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
    """`records.sort_key` read back."""
    try:
        return records.from_sort_key(key)
    except (TypeError, ValueError) as exc:
        raise DependencyUnavailable(
            "store", f"{RUNS_COLLECTION}: {key!r} is not a tick (sort-key text)"
        ) from exc


def token_documents(token: ApiToken) -> tuple[dict[str, Any], dict[str, Any]]:
    """The token, keyed by its name, and its hash's document, keyed by the hash."""
    fields = records.token_record(token)
    name = fields.pop("name")
    return {"_key": name, **fields}, {"_key": token.sha256, "name": name}


def load_token(doc: dict[str, Any]) -> ApiToken:
    return records.token_from_record({**doc, "name": doc["_key"]})
