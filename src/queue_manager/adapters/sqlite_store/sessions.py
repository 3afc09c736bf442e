"""The logged-out sessions part of the SQLite store (SessionStore): one row per session, with
when it would have ended by itself (epoch seconds), indexed so the old ones go cheaply."""

from __future__ import annotations

from datetime import datetime

from queue_manager.adapters.sqlite_store import queries
from queue_manager.adapters.sqlite_store.connection import Access


class Sessions:
    def __init__(self, db: Access) -> None:
        self._db = db

    async def end_session(self, session_id: str, until: datetime, now: datetime) -> None:
        async with self._db.transaction() as writer:
            await writer.execute(queries.SESSION_END, (session_id, until.timestamp()))
            # Sessions past their own end are refused by their age: their records can go.
            await writer.execute(queries.SESSIONS_PURGE, (now.timestamp(),))

    async def ended_sessions(self, now: datetime) -> set[str]:
        rows = await self._db.read(queries.SESSIONS_ENDED, (now.timestamp(),))
        return {row[0] for row in rows}
