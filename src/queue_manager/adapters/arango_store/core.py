"""What the ArangoDB store's halves (admission, schedules) need from the store itself: declared
once here, defined by ArangoStore, which comes first in the method resolution order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from queue_manager.domain.history import QueueEvent


class StoreCore:
    _max_attempts: int
    _guard: Callable[[str], AbstractAsyncContextManager[None]]

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
