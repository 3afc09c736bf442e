"""Admission half of the ArangoDB store: `admit`, `claim` and `queued_order`.

Documents are otherwise updated optimistically one by one, which cannot keep a limit that spans
queues: two replicas could each count 2 running and both admit the third. So every admission
and claim runs in one stream transaction that first writes the same lock document
(`queue_locks/admission`); a second transaction writing it meanwhile gets a write-write
conflict, is aborted and runs again on fresh data. The count, the choice and the writes of one
decision therefore see no other decision in between.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from arangoasync.exceptions import ArangoServerError, DocumentRevisionError

from queue_manager.adapters.arango_store import documents, queries
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


async def _rows(txn: Any, query: tuple[str, dict[str, Any]]) -> list[Any]:
    async with await txn.aql.execute(query[0], bind_vars=query[1]) as cursor:
        return [row async for row in cursor]


class AdmissionMethods:
    """Mixed into ArangoStore, which provides the connection, the error guard and the retry
    helpers declared here."""

    _max_attempts: int
    _guard: Callable[[str], AbstractAsyncContextManager[None]]
    _admission_lock: asyncio.Lock

    def _require(self) -> Any:
        raise NotImplementedError

    async def _query(self, action: str, query: str, bind_vars: dict[str, Any]) -> list[Any]:
        raise NotImplementedError

    @staticmethod
    async def _insert_events(txn: Any, queue_id: str, events: Sequence[QueueEvent]) -> None:
        raise NotImplementedError

    @staticmethod
    async def _abort(txn: Any) -> None:
        raise NotImplementedError

    @staticmethod
    async def _backoff(attempt: int) -> None:
        raise NotImplementedError

    async def _one_at_a_time(self, action: str, body: Callable[[Any], Awaitable[T]]) -> T:
        db = self._require()
        async with self._admission_lock:  # this process's decisions never conflict each other
            for attempt in range(self._max_attempts):
                async with self._guard(action):
                    txn = await db.begin_transaction(
                        write=[QUEUE_COLLECTION, EVENTS_COLLECTION, LOCKS_COLLECTION]
                    )
                    try:
                        await _rows(txn, queries.admission_lock())
                        result = await body(txn)
                        await txn.commit_transaction()
                        return result
                    except DocumentRevisionError:
                        await self._abort(txn)  # a queue changed under us: decide again
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
        self, limit: int, admit: Callable[[QueueState], list[QueueEvent]]
    ) -> list[QueueState]:
        async def decide(txn: Any) -> list[QueueState]:
            running = (await _rows(txn, queries.running_count(_RUNNING)))[0]
            free = limit - int(running)
            if free <= 0:
                return []
            admitted = []
            for raw in await _rows(txn, queries.queued_next(QueueStatus.QUEUED.value, free)):
                queue = documents.load(raw)
                await self._write(txn, queue, raw["_rev"], admit(queue))
                admitted.append(queue)
            return admitted

        return await self._one_at_a_time("admit queues", decide)

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
                for row in await _rows(txn, query):
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
