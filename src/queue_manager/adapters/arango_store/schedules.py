"""The schedules half of the ArangoDB store (ScheduleStore): one document per schedule keyed by
name (`queue_schedules`), and one per decided tick (`queue_schedule_runs`) whose `_key` is the
SHA-256 of (schedule, tick), so the primary index lets a tick be decided only once; a claim
inserts it with the tick's queues and their history in one stream transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from arangoasync.exceptions import ArangoServerError, DocumentRevisionError

from queue_manager.adapters import cursor as cursors
from queue_manager.adapters.arango_store import documents, queries
from queue_manager.adapters.arango_store.admission import rows
from queue_manager.adapters.arango_store.core import StoreCore
from queue_manager.adapters.arango_store.errors import (
    ERR_CONFLICT,
    ERR_DOCUMENT_NOT_FOUND,
    ERR_UNIQUE,
    server_codes,
)
from queue_manager.adapters.arango_store.queries import (
    EVENTS_COLLECTION,
    QUEUE_COLLECTION,
    RUNS_COLLECTION,
    SCHEDULES_COLLECTION,
)
from queue_manager.domain.errors import DependencyUnavailable
from queue_manager.domain.history import QueueEvent
from queue_manager.domain.models import ACTIVE_QUEUE_STATUSES, QueueState
from queue_manager.domain.schedules import Schedule, ScheduleRun

_CLAIM_COLLECTIONS = [RUNS_COLLECTION, QUEUE_COLLECTION, EVENTS_COLLECTION]
#: sorts after every sort-key text (which starts with a digit)
_NO_UPPER_BOUND = "~"


class ScheduleMethods(StoreCore):
    """Mixed into ArangoStore, which provides the connection, the error guard and the retry
    helpers StoreCore declares."""

    # AdmissionMethods._locked (annotated, not defined here, so it is never shadowed)
    _locked: Callable[..., Awaitable[Any]]

    async def put_schedule(self, schedule: Schedule) -> bool:
        db = self._require()
        doc = documents.schedule_document(schedule)
        for attempt in range(self._max_attempts):
            async with self._guard(f"create schedule {schedule.name}"):
                try:
                    await db.collection(SCHEDULES_COLLECTION).insert(doc, silent=True)
                except ArangoServerError as exc:
                    err = server_codes(exc)[1]
                    if err == ERR_UNIQUE:
                        return False  # the name (the key) is taken
                    if err != ERR_CONFLICT:  # another replica creating it right now: look again
                        raise
                else:
                    return True
            await self._backoff(attempt)
        raise DependencyUnavailable(
            "store", f"schedule {schedule.name} still contended after {self._max_attempts} attempts"
        )

    async def get_schedule(self, name: str) -> Schedule | None:
        if not documents.valid_key(name):
            return None  # not a key ArangoDB could hold (and never a path to another collection)
        db = self._require()
        async with self._guard(f"read schedule {name}"):
            raw = await db.collection(SCHEDULES_COLLECTION).get(name)
        return documents.load_schedule(raw) if raw is not None else None

    async def list_schedules(self) -> list[Schedule]:
        found = await self._query("list schedules", *queries.schedules())
        return [documents.load_schedule(row) for row in found]

    async def update_schedule(
        self, name: str, mutate: Callable[[Schedule], None]
    ) -> Schedule | None:
        if not documents.valid_key(name):
            return None
        db = self._require()
        coll = db.collection(SCHEDULES_COLLECTION)
        for attempt in range(self._max_attempts):
            async with self._guard(f"read schedule {name}"):
                raw = await coll.get(name)
            if raw is None:
                return None
            schedule = documents.load_schedule(raw)
            mutate(schedule)  # domain code: its errors are not the store's
            doc = documents.schedule_document(schedule, key=name)
            async with self._guard(f"update schedule {name}"):
                try:
                    await coll.replace(doc, if_match=raw["_rev"], silent=True)
                except DocumentRevisionError:
                    pass  # changed by another replica meanwhile: apply to the fresh copy
                except ArangoServerError as exc:
                    err = server_codes(exc)[1]
                    if err == ERR_DOCUMENT_NOT_FOUND:
                        return None  # deleted meanwhile
                    if err != ERR_CONFLICT:  # a write-write conflict is retried too
                        raise
                else:
                    return schedule
            await self._backoff(attempt)
        raise DependencyUnavailable(
            "store", f"schedule {name} still contended after {self._max_attempts} attempts"
        )

    async def delete_schedule(self, name: str) -> bool:
        async def delete(txn: Any) -> bool:
            removed = await rows(txn, queries.schedule_delete(name))
            await rows(txn, queries.runs_delete(name))
            return bool(removed)

        write = [SCHEDULES_COLLECTION, RUNS_COLLECTION]
        return bool(await self._locked(f"delete schedule {name}", None, write, delete))

    async def claim_tick(
        self, run: ScheduleRun, queues: Sequence[tuple[QueueState, Sequence[QueueEvent]]]
    ) -> bool:
        db = self._require()
        doc = documents.run_document(run)
        inserts = [(documents.document(queue), queue.id, events) for queue, events in queues]
        action = f"record tick {doc['scheduled_for']} of schedule {run.schedule}"
        for attempt in range(self._max_attempts):
            async with self._guard(action):
                txn = await db.begin_transaction(write=_CLAIM_COLLECTIONS)
                run_stored = False
                try:
                    await txn.collection(RUNS_COLLECTION).insert(doc, silent=True)
                    run_stored = True
                    for queue_doc, queue_id, events in inserts:
                        await txn.collection(QUEUE_COLLECTION).insert(queue_doc, silent=True)
                        await self._insert_events(txn, queue_id, events)
                    await txn.commit_transaction()
                    return True
                except ArangoServerError as exc:
                    await self._abort(txn)
                    err = server_codes(exc)[1]
                    if err == ERR_UNIQUE and not run_stored:
                        return False  # decided already: by another replica, or before a restart
                    if err != ERR_CONFLICT:  # e.g. a queue id taken: not the tick's doing
                        raise
                except BaseException:
                    await self._abort(txn)
                    raise
            # Another replica is deciding this tick (not committed yet): look again.
            await self._backoff(attempt)
        raise DependencyUnavailable(
            "store", f"{action} still contended after {self._max_attempts} attempts"
        )

    async def last_ticks(self) -> dict[str, datetime]:
        found = await self._query("read the latest ticks", *queries.last_ticks())
        return {str(name): documents.from_sort_key(key) for name, key in found}

    async def schedule_runs(
        self, name: str, *, before: datetime | None, limit: int
    ) -> list[ScheduleRun]:
        upper = cursors.sort_key(before) if before is not None else _NO_UPPER_BOUND
        query, bind = queries.runs_of(name, upper, limit)
        found = await self._query(f"list runs of schedule {name}", query, bind)
        return [documents.load_run(row) for row in found]

    async def active_runs(self, name: str) -> list[QueueState]:
        statuses = [s.value for s in ACTIVE_QUEUE_STATUSES]
        query, bind = queries.active_runs(name, statuses)
        found = await self._query(f"list active runs of schedule {name}", query, bind)
        return [documents.load(row) for row in found]
