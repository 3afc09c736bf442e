"""The schedules part of the ArangoDB store (ScheduleStore): one document per schedule keyed by
name (`queue_schedules`), and one per decided tick (`queue_schedule_runs`) whose `_key` is the
SHA-256 of (schedule, tick), so the primary index lets a tick be decided only once; a claim
inserts it with the tick's queues and their history in one stream transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from arangoasync.exceptions import ArangoServerError

from queue_manager.adapters.arango_store import coverage, documents, queries
from queue_manager.adapters.arango_store.connection import Database, rows
from queue_manager.adapters.arango_store.errors import (
    ERR_DOCUMENT_NOT_FOUND,
    ERR_UNIQUE,
    server_codes,
)
from queue_manager.adapters.arango_store.queries import QUEUE_COLLECTION, RUNS_COLLECTION
from queue_manager.adapters.arango_store.queues import insert_events
from queue_manager.domain import records
from queue_manager.domain.history import QueueEvent
from queue_manager.domain.models import ACTIVE_QUEUE_STATUSES, QueueState
from queue_manager.domain.schedules import Schedule, ScheduleRun


class _Decided(Exception):
    """The tick is decided already: by another replica, or before a restart."""


class Schedules:
    def __init__(self, db: Database) -> None:
        self._db = db

    def _collection(self) -> Any:
        return self._db.require().collection(queries.SCHEDULES_COLLECTION)

    async def put_schedule(self, schedule: Schedule) -> bool:
        doc = documents.schedule_document(schedule)

        async def attempt() -> bool:
            try:
                await self._collection().insert(doc, silent=True)
            except ArangoServerError as exc:
                if server_codes(exc)[1] == ERR_UNIQUE:
                    return False  # the name (the key) is taken
                raise
            return True

        return await self._db.retry(f"create schedule {schedule.name}", attempt)

    async def get_schedule(self, name: str) -> Schedule | None:
        if not documents.valid_key(name):
            return None  # not a key ArangoDB could hold (and never a path to another collection)
        coll = self._collection()
        async with self._db.guard(f"read schedule {name}"):
            raw = await coll.get(name)
        return documents.load_schedule(raw) if raw is not None else None

    async def list_schedules(self) -> list[Schedule]:
        found = await self._db.query("list schedules", queries.schedules())
        return sorted((documents.load_schedule(row) for row in found), key=lambda s: s.name)

    async def update_schedule(
        self, name: str, mutate: Callable[[Schedule], None]
    ) -> Schedule | None:
        if not documents.valid_key(name):
            return None
        coll = self._collection()

        async def attempt() -> Schedule | None:
            raw = await coll.get(name)
            if raw is None:
                return None
            schedule = documents.load_schedule(raw)
            mutate(schedule)  # domain code: its errors are not the store's
            doc = documents.schedule_document(schedule, key=name)
            try:
                await coll.replace(doc, if_match=raw["_rev"], silent=True)
            except ArangoServerError as exc:
                if server_codes(exc)[1] == ERR_DOCUMENT_NOT_FOUND:
                    return None  # deleted meanwhile
                raise
            return schedule

        return await self._db.retry(f"update schedule {name}", attempt)

    async def delete_schedule(self, name: str) -> bool:
        async def delete(txn: Any) -> bool:
            removed = await rows(txn, queries.schedule_delete(name))
            await rows(txn, queries.runs_delete(name))
            return bool(removed)

        action = f"delete schedule {name}"
        return await self._db.transaction(action, queries.SCHEDULE_COLLECTIONS, delete)

    async def claim_tick(
        self, run: ScheduleRun, queues: Sequence[tuple[QueueState, Sequence[QueueEvent]]]
    ) -> bool:
        doc = documents.run_document(run)
        inserts = [(documents.document(queue), queue.id, events) for queue, events in queues]

        async def decide(txn: Any) -> bool:
            try:
                await txn.collection(RUNS_COLLECTION).insert(doc, silent=True)
            except ArangoServerError as exc:
                if server_codes(exc)[1] == ERR_UNIQUE:
                    raise _Decided from None
                raise
            for queue_doc, queue_id, events in inserts:
                # a queue id taken is not the tick's doing: it fails the claim
                await txn.collection(QUEUE_COLLECTION).insert(queue_doc, silent=True)
                await insert_events(txn, queue_id, events)
            await coverage.record(txn, [queue for queue, _ in queues])
            return True

        action = f"record tick {doc['scheduled_for']} of schedule {run.schedule}"
        try:
            collections = coverage.writes(queries.TICK_COLLECTIONS, True)
            return await self._db.transaction(action, collections, decide)
        except _Decided:
            return False

    async def last_ticks(self) -> dict[str, datetime]:
        found = await self._db.query("read the latest ticks", queries.last_ticks())
        return {str(name): documents.from_sort_key(key) for name, key in found}

    async def schedule_runs(
        self, name: str, *, before: datetime | None, limit: int
    ) -> list[ScheduleRun]:
        bound = records.sort_key(before) if before is not None else None
        query = queries.runs_of(name, bound, limit)
        found = await self._db.query(f"list runs of schedule {name}", query)
        return [documents.load_run(row) for row in found]

    async def active_runs(self, name: str) -> list[QueueState]:
        statuses = [s.value for s in ACTIVE_QUEUE_STATUSES]
        query = queries.active_runs(name, statuses)
        found = await self._db.query(f"list active runs of schedule {name}", query)
        return [documents.load(row) for row in found]
