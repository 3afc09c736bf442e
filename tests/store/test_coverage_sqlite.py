"""The coverage ledger and the queues share one SQLite transaction: when the ledger cannot be
written, neither is the queue (docs/coverage.md)."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import pytest

from queue_manager.adapters.sqlite_store import SQLiteStore
from queue_manager.domain.errors import DependencyUnavailable
from queue_manager.domain.models import QueueStatus, StepStatus
from tests.store.test_coverage_contract import TYPE, _end, _queue, _write


async def test_a_queue_write_whose_cells_cannot_be_written_is_not_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.db"
    store = SQLiteStore(path)
    await store.open()
    try:
        queue = _queue(date(2024, 1, 1), date(2024, 1, 2))
        await store.insert(queue, None)
        # Another process's view of the file: from now on, no cell can change.
        with sqlite3.connect(path) as conn:
            conn.execute(
                "CREATE TRIGGER no_cells BEFORE INSERT ON coverage_cells "
                "BEGIN SELECT RAISE(ABORT, 'ledger refused'); END"
            )
        _end(queue, 0, StepStatus.FINISHED)
        with pytest.raises(DependencyUnavailable, match="ledger refused"):
            await _write(store, queue)
        stored = await store.get(queue.id)
        assert stored is not None and stored.status is QueueStatus.LOADING
        cells = await store.coverage_cells(["BTCUSDT"], [TYPE], date(2024, 1, 1), date(2024, 1, 2))
        assert [c.state.value for c in cells] == ["running", "running"]
    finally:
        await store.close()
