"""The logged-out sessions part of the ArangoDB store (SessionStore): one document per session,
keyed by its id, with when it would have ended by itself (epoch seconds), indexed so the old
ones go cheaply."""

from __future__ import annotations

from datetime import datetime

from queue_manager.adapters.arango_store import queries
from queue_manager.adapters.arango_store.connection import Database


class Sessions:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def end_session(self, session_id: str, until: datetime, now: datetime) -> None:
        doc = {"_key": session_id, "until": until.timestamp()}
        await self._db.query("record a logout", queries.session_end(doc))
        # Sessions past their own end are refused by their age: their records can go.
        await self._db.query("forget old logouts", queries.sessions_purge(now.timestamp()))

    async def ended_sessions(self, now: datetime) -> set[str]:
        found = await self._db.query("list logouts", queries.sessions_ended(now.timestamp()))
        return {str(key) for key in found}
