"""Admission half of the ArangoDB store: `admit`, `claim`, `update_parent` and `queued_order`.

Documents are otherwise updated optimistically one by one, which cannot keep a limit that spans
queues: two replicas could each count 2 running and both admit the third. So every admission
and claim runs in one stream transaction that first writes the same lock document
(`queue_locks/admission`); a second transaction writing it meanwhile gets a write-write
conflict, is aborted and runs again on fresh data. The count, the choice and the writes of one
decision therefore see no other decision in between.

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
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from arangoasync.exceptions import ArangoServerError, DocumentRevisionError

from queue_manager.adapters.arango_store import documents, queries
from queue_manager.adapters.arango_store.core import StoreCore
from queue_manager.adapters.arango_store.errors import ERR_CONFLICT, server_codes
from queue_manager.adapters.arango_store.queries import (
    EVENTS_COLLECTION,
    LOCKS_COLLECTION,
    QUEUE_COLLECTION,
)
from queue_manager.domain.errors import DependencyUnavailable
from queue_manager.domain.history import QueueEvent
from queue_manager.domain.models import RUNNING_QUEUE_STATUSES, QueueState, QueueStatus, StepStatus

T = TypeVar("T")

_RUNNING = [s.value for s in RUNNING_QUEUE_STATUSES]
_RUNNING_STEPS = [s.value for s in StepStatus if s.running]
#: queued queues read per query while admitting
_PAGE = 500
#: what every locked decision writes: queues, their history and the lock document
_LOCKED_WRITE = [QUEUE_COLLECTION, EVENTS_COLLECTION, LOCKS_COLLECTION]


async def rows(txn: Any, query: tuple[str, dict[str, Any]]) -> list[Any]:
    async with await txn.aql.execute(query[0], bind_vars=query[1]) as cursor:
        return [row async for row in cursor]


class AdmissionMethods(StoreCore):
    """Mixed into ArangoStore, which provides the connection, the error guard and the retry
    helpers StoreCore declares."""

    _queue_lock: Callable[[str], AbstractAsyncContextManager[None]]
    _admission_lock: asyncio.Lock

    async def _one_at_a_time(self, action: str, body: Callable[[Any], Awaitable[T]]) -> T:
        async with self._admission_lock:  # this process's decisions never conflict each other
            return await self._locked(action, queries.admission_lock(), _LOCKED_WRITE, body)

    async def _locked(
        self,
        action: str,
        lock: tuple[str, dict[str, Any]] | None,
        write: list[str],
        body: Callable[[Any], Awaitable[T]],
    ) -> T:
        """Run `body` in a stream transaction writing `write`, after writing the `lock` document
        (if any); on a write-write conflict or a changed revision, abort and run it again."""
        db = self._require()
        for attempt in range(self._max_attempts):
            async with self._guard(action):
                txn = await db.begin_transaction(write=write)
                try:
                    if lock is not None:
                        await rows(txn, lock)
                    result = await body(txn)
                    await txn.commit_transaction()
                    return result
                except DocumentRevisionError:
                    await self._abort(txn)  # a document changed under us: decide again
                except ArangoServerError as exc:
                    await self._abort(txn)
                    if server_codes(exc)[1] != ERR_CONFLICT:
                        raise
                except BaseException:
                    await self._abort(txn)
                    raise
            await self._backoff(attempt)
        raise DependencyUnavailable(
            "store", f"{action} still contended after {self._max_attempts} attempts"
        )

    async def _write(
        self, txn: Any, queue: QueueState, rev: str, events: Sequence[QueueEvent]
    ) -> None:
        doc = documents.document(queue)
        await txn.collection(QUEUE_COLLECTION).replace(doc, if_match=rev, silent=True)
        await self._insert_events(txn, queue.id, events)

    async def admit(
        self, limit: int | None, admit: Callable[[QueueState], list[QueueEvent]]
    ) -> list[QueueState]:
        async def decide(txn: Any) -> list[QueueState]:
            running: Counter[str | None] = Counter()
            for parent, n in await rows(txn, queries.running_by_parent(_RUNNING)):
                running[parent] += int(n)
            free = None if limit is None else limit - sum(running.values())
            # children running per backfill; the query passes over the full ones' children
            busy = Counter({str(p): n for p, n in running.items() if p is not None})
            admitted: list[QueueState] = []
            after: tuple[Any, str, str] | None = None
            while free is None or free > 0:
                size = _PAGE if free is None else min(free, _PAGE)
                found = await rows(
                    txn, queries.queued_next(QueueStatus.QUEUED.value, size, busy, after)
                )
                for raw in found:
                    queue = documents.load(raw)
                    if queue.parent and queue.max_parallel is not None:
                        if busy[queue.parent] >= queue.max_parallel:
                            continue  # its backfill runs its max_parallel children already
                        busy[queue.parent] += 1
                    # Written at once: the next page starts past this row (keyset), not at an
                    # offset that the queues admitted meanwhile would shift.
                    await self._write(txn, queue, raw["_rev"], admit(queue))
                    admitted.append(queue)
                    if free is not None:
                        free -= 1
                        if free == 0:
                            break
                if len(found) < size:
                    break
                last = found[-1]
                after = (last.get("priority"), str(last["created"]), str(last["_key"]))
            return admitted

        return await self._one_at_a_time("admit queues", decide)

    async def update_parent(
        self,
        parent_id: str,
        mutate: Callable[[QueueState, list[QueueState]], list[QueueEvent] | None],
    ) -> QueueState | None:
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
                await self._write(txn, parent, raw["_rev"], events)
            return parent

        # This process's recounts of one parent (and its other writers) take turns.
        async with self._queue_lock(parent_id):
            lock = queries.parent_lock(parent_id)
            return await self._locked(f"recount backfill {parent_id}", lock, _LOCKED_WRITE, recount)

    async def claim(
        self,
        queue_id: str,
        targets: Collection[str],
        mutate: Callable[[QueueState, Mapping[str, int]], list[QueueEvent] | None],
    ) -> QueueState | None:
        if not documents.valid_key(queue_id):
            return None

        async def decide(txn: Any) -> QueueState | None:
            running: Counter[str] = Counter()
            if targets:
                query = queries.running_jobs(_RUNNING, _RUNNING_STEPS, sorted(targets))
                for row in await rows(txn, query):
                    running.update(row)
            raw = await txn.collection(QUEUE_COLLECTION).get(queue_id)
            if raw is None:
                return None
            queue = documents.load(raw)
            events = mutate(queue, running)
            if events is not None:
                await self._write(txn, queue, raw["_rev"], events)
            return queue

        return await self._one_at_a_time(f"claim steps of {queue_id}", decide)

    async def queued_order(self) -> list[str]:
        query, bind = queries.queued_order(QueueStatus.QUEUED.value)
        return [str(key) for key in await self._query("list queued queues", query, bind)]
