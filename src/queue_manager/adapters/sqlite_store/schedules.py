"""The schedules part of the SQLite store (ScheduleStore): one row per schedule, and one per
decided tick keyed by (schedule, tick), so a tick can be decided only once; a claim inserts it
with the tick's queues and their history in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from queue_manager.adapters.sqlite_store import documents, queries
from queue_manager.adapters.sqlite_store.connection import Access
from queue_manager.adapters.sqlite_store.queues import insert_new
from queue_manager.domain import records
from queue_manager.domain.history import QueueEvent
from queue_manager.domain.models import ACTIVE_QUEUE_STATUSES, QueueState
from queue_manager.domain.schedules import Schedule, ScheduleRun


class Schedules:
    def __init__(self, db: Access) -> None:
        self._db = db

    async def put_schedule(self, schedule: Schedule) -> bool:
        doc = schedule.model_dump_json().encode()
        return await self._db.write(queries.SCHEDULE_INSERT, (schedule.name, doc)) == 1

    async def get_schedule(self, name: str) -> Schedule | None:
        rows = await self._db.read(queries.SCHEDULE, (name,))
        return documents.load_schedule(rows[0][0]) if rows else None

    async def list_schedules(self) -> list[Schedule]:
        rows = await self._db.read(queries.SCHEDULES, ())
        return [documents.load_schedule(row[0]) for row in rows]

    async def update_schedule(
        self, name: str, mutate: Callable[[Schedule], None]
    ) -> Schedule | None:
        async with self._db.transaction() as writer:
            rows: Any = await writer.execute_fetchall(queries.SCHEDULE, (name,))
            if not rows:
                return None
            schedule = documents.load_schedule(rows[0][0])
            mutate(schedule)
            doc = schedule.model_dump_json().encode()
            await writer.execute(queries.SCHEDULE_UPDATE, (doc, name))
        return schedule

    async def delete_schedule(self, name: str) -> bool:
        async with self._db.transaction() as writer:
            cursor = await writer.execute(queries.SCHEDULE_DELETE, (name,))
            await writer.execute(queries.RUNS_DELETE, (name,))
        return cursor.rowcount == 1

    async def claim_tick(
        self, run: ScheduleRun, queues: Sequence[tuple[QueueState, Sequence[QueueEvent]]]
    ) -> bool:
        async with self._db.transaction() as writer:
            cursor = await writer.execute(queries.RUN_INSERT, documents.run_row(run))
            if cursor.rowcount != 1:
                return False  # decided already: by another replica, or before a restart
            await insert_new(writer, queues)
        return True

    async def last_ticks(self) -> dict[str, datetime]:
        rows = await self._db.read(queries.LAST_TICKS, ())
        return {str(name): records.from_sort_key(key) for name, key in rows}

    async def schedule_runs(
        self, name: str, *, before: datetime | None, limit: int
    ) -> list[ScheduleRun]:
        if before is None:
            rows = await self._db.read(queries.RUNS_OF, (name, limit))
        else:
            rows = await self._db.read(queries.RUNS_BEFORE, (name, records.sort_key(before), limit))
        return [documents.load_run(row[0]) for row in rows]

    async def active_runs(self, name: str) -> list[QueueState]:
        statuses = tuple(s.value for s in ACTIVE_QUEUE_STATUSES)
        rows = await self._db.read(queries.ACTIVE_RUNS, (*statuses, name))
        return [documents.load(row[0]) for row in rows]
