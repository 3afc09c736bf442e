"""A worker for tests/e2e/test_outage_counts.py, run as LOCAL_WORKER_COMMAND: reports 800
records, waits for the test's go-ahead (the file OUTAGE_GO_FILE appears), then reports 1600 and
finishes with 2400 — while the service is down — and gives up delivering after
OUTAGE_DELIVERY_DEADLINE seconds (the SDK's `delivery_deadline`, 120 s by default). The exit file
keeps what it could not deliver."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from queue_manager.worker import Worker


async def main() -> int:
    go = Path(os.environ["OUTAGE_GO_FILE"])
    deadline = float(os.environ.get("OUTAGE_DELIVERY_DEADLINE", "1"))
    async with Worker.from_env(delivery_deadline=deadline) as worker:
        await worker.started()
        await worker.loading(records_written=800)
        while not await asyncio.to_thread(go.exists):
            if await worker.wait_stop(0.05):
                return 0
        await worker.loading(records_written=1600)
        await worker.finished(records_written=2400)
    assert worker.outcome is not None
    return worker.outcome.exit_code


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
