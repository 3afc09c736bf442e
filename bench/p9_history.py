"""P9 — the cost of the event history on telemetry: history on vs off.

P1's scenario (bench/p1_telemetry.py: its event shape and its applied count) at 50,000
worker-shaped `loading` events (quick: 10,000), 50 per queue over 1,000 single-step queues
(quick: 200), pre-loaded into a real Kafka topic; the service (SQLite, Kafka bus, local
launcher) is started on it and timed from the first to the last event applied, read in the
SQLite file. Twice per round, on fresh stores and topics: once the service as it is (each
state change appends its events to `queue_events`), once the same `create_app` given
`bench.stores.NoHistoryStore`, a SQLiteStore subclass whose history append is a no-op
(`uvicorn --factory bench.stores:no_history_app`). Three rounds (quick: two), history on
first in each; medians (the applied count is polled every 10 ms). The figure is the cost per
event applied (µs = 1e6 / events/s); the baseline is the same with the history off, so ratio =
on/off of cost = off/on of events/s.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.support.waiting import wait_until

from bench import p1_telemetry as p1
from bench.config import Config
from bench.kafka import produce_all
from bench.profile import profiled
from bench.report import Row
from bench.seeding import seed_running
from bench.services import service
from bench.stats import median

PER_QUEUE = 50


def applied_rate(cfg: Config, name: str, queues: int, *, history: bool) -> tuple[float, int]:
    """Events/s applied from the first to the last, and how many were applied."""
    svc = service(cfg, name, kafka=True, RECONCILE_SECONDS="5")
    if not history:
        svc.app = "bench.stores:no_history_app"
    topic = svc.env["QUEUE_EVENTS_TOPIC"]
    db = str(svc.data_dir / "queue-manager.db")
    try:
        # As P1: stored pending, launched (idle workers) by a first start-up reconcile.
        seeded = asyncio.run(seed_running(Path(db), queues, claim=False))
        jobs = svc.data_dir / "jobs"
        svc.reap_workers = False
        with svc:
            wait_until(lambda: len(list(jobs.glob("*.json"))) >= queues, 300, every=0.2,
                       what=f"the start-up reconcile to launch {queues:,} workers")  # fmt: skip
            time.sleep(1)
        svc.reap_workers = True
        items = p1.events(seeded, PER_QUEUE)
        asyncio.run(produce_all(cfg, topic, items))
        with svc:
            wait_until(lambda: p1.applied(db) > 0, 120, every=0.02, what="a first event applied")
            first, at_first = time.perf_counter(), p1.applied(db)
            with profiled(svc, f"p9-{'on' if history else 'off'}", cfg, seconds=10):
                done = at_first
                while done < len(items) and time.perf_counter() - first < 300:
                    time.sleep(0.01)
                    done = p1.applied(db)
                end = time.perf_counter()
        return (done - at_first) / (end - first), done
    finally:
        svc.kill_workers()


def history_rows(db: str) -> int:
    import sqlite3

    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM queue_events").fetchone()[0])


def run(cfg: Config) -> list[Row]:
    queues = cfg.size(1_000, 200)
    total = queues * PER_QUEUE
    on: list[float] = []
    off: list[float] = []
    short = 0
    for r in range(cfg.size(3, 2)):
        rate, done = applied_rate(cfg, f"p9-on-{r}", queues, history=True)
        on.append(rate)
        short += done < total
        rate, done = applied_rate(cfg, f"p9-off-{r}", queues, history=False)
        off.append(rate)
        short += done < total
    events_on = history_rows(str(cfg.workdir / "p9-on-0" / "queue-manager.db"))
    events_off = history_rows(str(cfg.workdir / "p9-off-0" / "queue-manager.db"))
    r_on, r_off = median(on), median(off)
    assert r_on and r_off
    cost_on, cost_off = 1e6 / r_on, 1e6 / r_off
    return [
        Row("P9 telemetry cost per event, history on vs off", cost_on, "µs/ev", cost_off,
            "same with a no-op history append", "≤ 1.2×",
            cost_on <= 1.2 * cost_off,
            note=f"{total:,} events for {queues:,} queues per run; applied/s with history "
            f"{', '.join(f'{x:,.0f}' for x in on)} (on) vs {', '.join(f'{x:,.0f}' for x in off)}"
            f" (off); history rows after a run: {events_on:,} on, {events_off:,} off (a "
            "`loading` report that only moves records_written adds no history event)"
            + (f"; {short} run(s) stopped before all were applied" if short else "") + "."),
    ]
