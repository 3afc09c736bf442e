"""The overview's counts in the SQLite store (StatsStore): three grouped queries over the rows
created since the window's start, found through the `created` index. Runs are counted from the
columns alone; only the failure tallies by target read each ended queue's document (its steps),
and only those of the window."""

from __future__ import annotations

from datetime import datetime

from queue_manager.adapters.sqlite_store import queries
from queue_manager.adapters.sqlite_store.connection import Access
from queue_manager.domain import records
from queue_manager.domain.overview import RunStats, Tally


class Stats:
    def __init__(self, db: Access) -> None:
        self._db = db

    async def run_stats(self, since: datetime) -> RunStats:
        after = (records.sort_key(since),)
        runs = await self._db.read(queries.RUNS_BY_HOUR, after)
        targets = await self._db.read(queries.STEPS_BY_TARGET, after)
        symbols = await self._db.read(queries.RUNS_BY_SYMBOL, after)
        return RunStats(
            runs_by_hour=[(str(hour), str(status), int(n)) for hour, status, n in runs],
            by_target=[Tally(str(k), int(ended), int(failed)) for k, ended, failed in targets],
            by_symbol=[Tally(str(k), int(ended), int(failed)) for k, ended, failed in symbols],
        )
