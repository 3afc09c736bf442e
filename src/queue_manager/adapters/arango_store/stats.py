"""The overview's counts in the ArangoDB store (StatsStore): three COLLECT queries over the
documents created since the window's start (the persistent `created` index), grouped in the
database; only the counts travel."""

from __future__ import annotations

from datetime import datetime

from queue_manager.adapters.arango_store import queries
from queue_manager.adapters.arango_store.connection import Database
from queue_manager.domain import records
from queue_manager.domain.overview import RunStats, Tally


class Stats:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def run_stats(self, since: datetime) -> RunStats:
        after = records.sort_key(since)
        runs = await self._db.query("count runs", queries.runs_by_hour(after))
        targets = await self._db.query("count steps by target", queries.steps_by_target(after))
        symbols = await self._db.query("count runs by symbol", queries.runs_by_symbol(after))
        return RunStats(
            runs_by_hour=[(str(hour), str(status), int(n)) for hour, status, n in runs],
            by_target=[Tally(str(k), int(ended), int(failed)) for k, ended, failed in targets],
            by_symbol=[Tally(str(k), int(ended), int(failed)) for k, ended, failed in symbols],
        )
