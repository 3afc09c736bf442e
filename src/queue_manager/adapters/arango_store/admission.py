"""The admission part of the ArangoDB store: `admit`, `claim`, `update_parent`, `queued_order`.

Documents are otherwise updated optimistically one by one, which cannot keep a limit that spans
queues: two replicas could each count 2 running and both admit the third. So every admission
and claim runs in one stream transaction that first writes the same lock document
(`queue_locks/admission`, created at bootstrap); a second transaction writing it meanwhile gets
a write-write conflict, is aborted and runs again on fresh data. The count, the choice and the
writes of one decision therefore see no other decision in between. What is decided is
`domain.admission`'s.

A backfill's parent is recounted the same way under its own lock document
(`queue_locks/parent:<id>`): two recounts of one parent never overlap, so the last one always
reads the last child change even when it writes nothing (snapshot isolation alone would let an
older recount's write land after it). It needs no admission lock: an admission writes children
and never a parent, a recount only its parent, and the recount that follows every child change
starts after that change committed.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Collection
from typing import Any, Final, TypeVar

from queue_manager.adapters.arango_store import documents, queries
from queue_manager.adapters.arango_store.connection import Database, rows
from queue_manager.adapters.arango_store.queries import (
    EVENTS_COLLECTION,
    LOCKS_COLLECTION,
    QUEUE_COLLECTION,
)
from queue_manager.adapters.arango_store.queues import replace
from queue_manager.adapters.store_parts import Admit, Claim, Recount
from queue_manager.domain.admission import AdmissionRound, count_jobs
from queue_manager.domain.models import RUNNING_QUEUE_STATUSES, QueueState, QueueStatus

T = TypeVar("T")

_RUNNING: Final = [s.value for s in RUNNING_QUEUE_STATUSES]
#: queued queues read per query while admitting
_PAGE: Final = 500
#: what every locked decision writes: queues, their history and the lock document
_LOCKED_WRITE: Final = (QUEUE_COLLECTION, EVENTS_COLLECTION, LOCKS_COLLECTION)


class Admission:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._turn = asyncio.Lock()  # this process's decisions never conflict each other

    async def _decide(self, action: str, body: Callable[[Any], Awaitable[T]]) -> T:
        async with self._turn:
            return await self._db.transaction(
                action, _LOCKED_WRITE, body, lock=queries.admission_lock()
            )

    async def admit(self, limit: int | None, admit: Admit) -> list[QueueState]:
        async def decide(txn: Any) -> list[QueueState]:
            running: Counter[str | None] = Counter()
            for parent, n in await rows(txn, queries.running_by_parent(_RUNNING)):
                running[parent] += int(n)
            line = AdmissionRound.begin(limit, running)
            admitted: list[QueueState] = []
            after: tuple[Any, str, str] | None = None
            while (size := line.next_page(_PAGE)) is not None:
                query = queries.queued_next(QueueStatus.QUEUED.value, size, line.busy, after)
                found = await rows(txn, query)
                revs = {str(raw["_key"]): raw["_rev"] for raw in found}
                for queue in line.admitted([documents.load(raw) for raw in found], size):
                    # Written at once: the next page starts past the last row read (keyset),
                    # not at an offset that the queues admitted meanwhile would shift.
                    await replace(txn, queue, revs[queue.id], admit(queue))
                    admitted.append(queue)
                if found:
                    last = found[-1]
                    after = (last.get("priority"), str(last["created"]), str(last["_key"]))
            return admitted

        return await self._decide("admit queues", decide)

    async def update_parent(self, parent_id: str, mutate: Recount) -> QueueState | None:
        if not documents.valid_key(parent_id):
            return None

        async def recount(txn: Any) -> QueueState | None:
            raw = await txn.collection(QUEUE_COLLECTION).get(parent_id)
            if raw is None:
                return None
            parent = documents.load(raw)
            found = await rows(txn, queries.children(parent_id))
            events = mutate(parent, [documents.load(child) for child in found])
            if events is not None:
                await replace(txn, parent, raw["_rev"], events)
            return parent

        # This process's recounts of one parent (and its other writers) take turns.
        async with self._db.queue_turn(parent_id):
            return await self._db.transaction(
                f"recount backfill {parent_id}",
                _LOCKED_WRITE,
                recount,
                lock=queries.parent_lock(parent_id),
            )

    async def claim(
        self, queue_id: str, targets: Collection[str], mutate: Claim
    ) -> QueueState | None:
        if not documents.valid_key(queue_id):
            return None

        async def decide(txn: Any) -> QueueState | None:
            running: Counter[str] = Counter()
            if targets:
                running = count_jobs(await rows(txn, queries.running_jobs()), targets)
            raw = await txn.collection(QUEUE_COLLECTION).get(queue_id)
            if raw is None:
                return None
            queue = documents.load(raw)
            events = mutate(queue, running)
            if events is not None:
                await replace(txn, queue, raw["_rev"], events)
            return queue

        return await self._decide(f"claim steps of {queue_id}", decide)

    async def queued_order(self) -> list[str]:
        query = queries.queued_order(QueueStatus.QUEUED.value)
        return [str(key) for key in await self._db.query("list queued queues", query)]
