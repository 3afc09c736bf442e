"""P8 — start-up with 10,000 non-terminal queues in the store (quick: 2,000).

The SQLite file is seeded through `SQLiteStore.insert` with single-step queues, half of them
`launching` (claimed by the state machine, within LAUNCH_GRACE_SECONDS=3600, so the start-up
reconcile only reads them) and half `loading` whose jobs are gone (the local launcher knows no
job: the start-up reconcile fails each one, as after a restart that lost its workers). The
embedded service (SQLite, in-process bus, local launcher) is then started on it and timed from
spawn to the first 200 on /health/ready (polled every 10 ms), and on to the moment every `loading`
queue is `error` in the file (the start-up reconcile has gone through every queue; polled every
50 ms with sqlite3, read-only). Baseline, on the same file right before the start: python's
sqlite3 selecting the same non-terminal rows and decoding every document with orjson (median
of three). For scale, the note gives start → ready of the same service on an empty store.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import time
from pathlib import Path

import orjson
from tests.support.waiting import wait_until

from bench.config import Config
from bench.profile import profiled
from bench.report import Row
from bench.seeding import template_queue
from bench.services import service
from bench.stats import median

ACTIVE = ("queued", "pending", "loading", "stopping")


async def seed(db: Path, count: int) -> None:
    """`count` single-step queues: even ones `launching` now, odd ones `loading` for an hour."""
    from queue_manager.adapters.sqlite_store import SQLiteStore
    from queue_manager.domain import state
    from queue_manager.domain.models import QueueStatus, StepStatus

    store = SQLiteStore(db)
    await store.open()
    try:
        for i in range(count):
            queue = template_queue()
            # launched now (within the grace: left alone) or an hour ago (loading since)
            at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=i % 2)
            state.claim_ready(queue, at)
            if i % 2:
                step = queue.steps[0]
                step.status = StepStatus.LOADING
                step.started_at = at
                queue.status = QueueStatus.LOADING
            await store.insert(queue, None)
    finally:
        await store.close()


def raw_read(db: Path) -> tuple[float, int]:
    """Seconds to select every non-terminal row and decode its document, and how many."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        began = time.perf_counter()
        marks = ",".join("?" * len(ACTIVE))
        rows = conn.execute(f"SELECT doc FROM queue_state WHERE status IN ({marks})",
                            ACTIVE).fetchall()  # fmt: skip
        for (doc,) in rows:
            orjson.loads(doc)
        return time.perf_counter() - began, len(rows)
    finally:
        conn.close()


def failed(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return int(conn.execute(
            "SELECT COUNT(*) FROM queue_state WHERE status = 'error'").fetchone()[0])


def run(cfg: Config) -> list[Row]:
    count = cfg.size(10_000, 2_000)
    env = {"LAUNCH_GRACE_SECONDS": "3600", "RECONCILE_SECONDS": "30"}
    svc = service(cfg, "p8", kafka=False, **env)
    db = svc.data_dir / "queue-manager.db"
    began = time.perf_counter()
    asyncio.run(seed(db, count))
    seeded_in = time.perf_counter() - began
    reads = [raw_read(db) for _ in range(3)]
    base = median([s for s, _ in reads])
    assert reads[0][1] == count, f"seeded {reads[0][1]} non-terminal queues, not {count}"
    spawned = time.perf_counter()
    with svc, profiled(svc, "p8", cfg, seconds=cfg.size(60, 6)):
        ready = svc.ready_after
        wait_until(lambda: failed(db) >= count // 2, 300, every=0.05,
                   what=f"the start-up reconcile to fail {count // 2:,} queues")  # fmt: skip
        reconciled = time.perf_counter() - spawned
        launching = count - failed(db)
    with service(cfg, "p8-empty", kafka=False, **env) as empty:
        empty_ready = empty.ready_after
    return [
        Row(f"P8 start → ready, {count:,} non-terminal queues stored", ready, "s", base,
            "sqlite3 select + orjson decode of those rows", "≤ 5 s", ready <= 5,
            note=f"{count:,} queues seeded through SQLiteStore.insert in {seeded_in:.1f} s "
            f"(half launching, half loading with no job); the same service on an empty store: "
            f"{empty_ready:.2f} s to ready."),
        Row(f"P8 start → start-up reconcile done, {count:,} queues", reconciled, "s", base,
            "sqlite3 select + orjson decode of those rows", "—", None,
            note=f"spawn until the {count // 2:,} `loading` queues whose jobs were gone are "
            f"all failed by the start-up reconcile ({launching:,} launching ones left as "
            "they were)."),
    ]
