"""The admission part of the SQLite store: `admit`, `claim`, `update_parent`, `queued_order`.

Each decision is one `BEGIN IMMEDIATE` transaction: it takes the file's write lock before it
reads, so no other process (replica) writes between the count and the writes, and decisions
across processes follow one another. What is decided is `domain.admission`'s.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from typing import Any

from queue_manager.adapters.sqlite_store import documents, queries
from queue_manager.adapters.sqlite_store.connection import Access
from queue_manager.adapters.sqlite_store.queues import Written, write_changes
from queue_manager.adapters.store_parts import Admit, Claim, Recount
from queue_manager.domain.admission import AdmissionRound, count_jobs
from queue_manager.domain.models import RUNNING_QUEUE_STATUSES, QueueState, QueueStatus

_RUNNING = tuple(s.value for s in RUNNING_QUEUE_STATUSES)


class Admission:
    def __init__(self, db: Access) -> None:
        self._db = db

    async def admit(self, limit: int | None, admit: Admit) -> list[QueueState]:
        async with self._db.transaction() as writer:
            rows: Any = await writer.execute_fetchall(
                queries.running_by_parent(len(_RUNNING)), _RUNNING
            )
            running = Counter(parent for parent, is_parent in rows if not is_parent)
            line = AdmissionRound.begin(limit, running)
            changed: list[Written] = []
            offset = 0
            while (size := line.next_page(queries.CHUNK)) is not None:
                rows = await writer.execute_fetchall(
                    queries.QUEUED_PAGE, (QueueStatus.QUEUED.value, size, offset)
                )
                offset += len(rows)
                page = [documents.load(doc) for (doc,) in rows]
                changed += [(queue, admit(queue)) for queue in line.admitted(page, size)]
            await write_changes(writer, changed)
        return [queue for queue, _ in changed]

    async def update_parent(self, parent_id: str, mutate: Recount) -> QueueState | None:
        async with self._db.transaction() as writer:
            rows: Any = await writer.execute_fetchall(queries.QUEUE_DOC, (parent_id,))
            if not rows:
                return None
            parent = documents.load(rows[0][0])
            children = await writer.execute_fetchall(queries.CHILDREN, (parent_id,))
            events = mutate(parent, [documents.load(doc) for (doc,) in children])
            if events is not None:
                await write_changes(writer, [(parent, events)])
        return parent

    async def claim(
        self, queue_id: str, targets: Collection[str], mutate: Claim
    ) -> QueueState | None:
        async with self._db.transaction() as writer:
            running: Counter[str] = Counter()
            if targets:
                rows: Any = await writer.execute_fetchall(queries.RUNNING_JOBS)
                running = count_jobs((jobs.split() for (jobs,) in rows), targets)
            rows = await writer.execute_fetchall(queries.QUEUE_DOC, (queue_id,))
            if not rows:
                return None
            queue = documents.load(rows[0][0])
            events = mutate(queue, running)
            if events is not None:
                await write_changes(writer, [(queue, events)])
        return queue

    async def queued_order(self) -> list[str]:
        rows = await self._db.read(queries.QUEUED_ORDER, (QueueStatus.QUEUED.value,))
        return [str(row[0]) for row in rows]
