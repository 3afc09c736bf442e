"""P1 — telemetry applied per second.

1,000 single-step queues are stored pending through SQLiteStore and launched by the service's
start-up reconcile (their local workers are idle `sleep`s that never report), the service is
stopped, and 300,000 worker-shaped `loading` events for those queues (300 each, interleaved) are
pre-loaded into a real Kafka topic. The service is then started again on that topic and timed
until every queue in the SQLite store shows its last event (records_written only grows, so the
last value means all were applied). Baseline, right before it: a bare aiokafka consumer draining
the same topic and decoding each value with orjson. Quick mode stops the service's clock after
8 s of applying. Both rates are taken from the first to the last event handled, so consumer
start-up and group join are outside both.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import time
import uuid
from pathlib import Path

import orjson
from tests.support.service import Service
from tests.support.waiting import wait_until

from bench.config import Config
from bench.kafka import produce_all
from bench.profile import profiled
from bench.report import Row
from bench.seeding import Seeded, seed_running
from bench.services import service

EVENTS = 300_000
QUEUES = 1_000


def events(seeded: list[Seeded], per_queue: int) -> list[tuple[bytes, bytes]]:
    out = []
    sent = dt.datetime.now(dt.UTC).isoformat()
    for n in range(1, per_queue + 1):
        for s in seeded:
            body = {
                "event": "loading",
                "queue_id": s.queue_id,
                "producer": s.producer,
                "records_written": n * 10,
                "sent_at": sent,
            }
            out.append((s.queue_id.encode(), orjson.dumps(body)))
    return out


async def bare_consumer(cfg: Config, topic: str, expected: int) -> float:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        **cfg.kafka().client_kwargs(sasl=False),
        group_id=f"bare-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    seen = 0
    first = last = 0.0
    try:
        while seen < expected:
            records = await consumer.getmany(timeout_ms=500, max_records=1000)
            for batch in records.values():
                for record in batch:
                    orjson.loads(record.value)
                    seen += 1
            if records and not first:
                first = time.perf_counter()
            last = time.perf_counter()
    finally:
        await consumer.stop()
    return expected / (last - first)


def applied(db: str) -> int:
    """Events applied so far: each queue's events carry 10, 20, 30... and apply in order."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        row = conn.execute(
            "SELECT SUM(json_extract(CAST(doc AS TEXT), '$.records_written')) FROM queue_state"
        ).fetchone()
    return int(row[0] or 0) // 10


def run(cfg: Config) -> list[Row]:
    per_queue = EVENTS // QUEUES
    budget = 8.0 if cfg.quick else 900.0
    svc = service(cfg, "p1", kafka=True, RECONCILE_SECONDS="5")
    topic = svc.env["QUEUE_EVENTS_TOPIC"]
    db = str(svc.data_dir / "queue-manager.db")
    try:
        return measure(cfg, svc, topic, db, per_queue, budget)
    finally:
        svc.kill_workers()


def measure(cfg: Config, svc: Service, topic: str, db: str, per_queue: int,
            budget: float) -> list[Row]:
    # The queues are stored pending; the service's start-up reconcile launches their (idle)
    # workers, which outlive this first run.
    seeded = asyncio.run(seed_running(Path(db), QUEUES, claim=False))
    jobs = svc.data_dir / "jobs"
    svc.reap_workers = False
    with svc:
        wait_until(lambda: len(list(jobs.glob("*.json"))) >= QUEUES, 300, every=0.2,
                   what=f"the start-up reconcile to launch {QUEUES:,} workers")  # fmt: skip
        time.sleep(1)
    svc.reap_workers = True
    items = events(seeded, per_queue)
    asyncio.run(produce_all(cfg, topic, items))
    baseline = asyncio.run(bare_consumer(cfg, topic, len(items)))

    with svc:
        start = time.perf_counter()
        wait_until(lambda: applied(db) > 0, 120, every=0.02, what="a first event applied")
        first, at_first = time.perf_counter(), applied(db)
        with profiled(svc, "p1", cfg, seconds=min(budget, 30)):
            done = at_first
            while done < len(items) and time.perf_counter() - first < budget:
                time.sleep(0.02)  # a batch applies in well under a second: poll finely
                done = applied(db)
            end = time.perf_counter()
    rate = (done - at_first) / (end - first)
    complete = "all applied" if done >= len(items) else (
        f"stopped after {end - first:.0f} s with {done:,} of {len(items):,} applied")
    return [
        Row(
            "P1 telemetry applied/s (Kafka → SQLite)",
            rate,
            "ev/s",
            baseline,
            "bare aiokafka + orjson",
            "≥ 0.5×",
            rate >= 0.5 * baseline,
            note=f"{len(items):,} events for {QUEUES:,} queues pre-loaded, {complete}; "
            f"{done / (end - start):,.0f} ev/s counting service start-up and group join.",
        )
    ]
