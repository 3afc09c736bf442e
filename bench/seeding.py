"""Queues for the benchmarks: seeded into a SQLite file through SQLiteStore (never raw SQL), or
started through the API."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


@dataclass(frozen=True)
class Seeded:
    queue_id: str
    producer: str  # the step's telemetry_id


def template_queue(symbol: str = "BTCUSDT") -> Any:
    from queue_manager.domain import planner
    from queue_manager.domain.requests import QueueCreate

    request = QueueCreate(symbol=symbol, type="api_candles_5m", time_range="2024-06-01:2024-06-30")
    return planner.plan(request, str(uuid.uuid4()))


def retarget(queue: Any, queue_id: str, created: dt.datetime, status: str | None) -> None:
    """Give the template a new identity in place (the planner's naming rules)."""
    from queue_manager.domain import naming
    from queue_manager.domain.models import QueueStatus

    queue.id = queue_id
    queue.created_at = queue.updated_at = created
    for step in queue.steps:
        step.job_name = naming.job_name(queue_id, step.index, step.target)
        step.telemetry_id = naming.telemetry_id(queue_id, step.index, step.target)
    if status is not None:
        queue.status = QueueStatus(status)
async def seed_running(db: Path, count: int, *, claim: bool = True) -> list[Seeded]:
    """`count` single-step queues. With `claim` the step is `launching` (with no job: only for a
    service with LAUNCH_GRACE_SECONDS large that gets no telemetry for it, else the reconciler
    fails it); without, it is `pending` and the service's start-up reconcile launches it, as
    after a restart."""
    from queue_manager.adapters.sqlite_store import SQLiteStore
    from queue_manager.domain import state

    store = SQLiteStore(db)
    await store.open()
    out: list[Seeded] = []
    try:
        for _ in range(count):
            queue = template_queue()
            if claim:
                state.claim_ready(queue, dt.datetime.now(dt.UTC))
            await store.insert(queue, None)
            out.append(Seeded(queue.id, queue.steps[0].telemetry_id))
    finally:
        await store.close()
    return out


def _seed_bulk_worker(args: tuple[str, int, int, int, float]) -> float:
    db, start, stop, every_error, t0 = args
    return asyncio.run(_seed_bulk(Path(db), start, stop, every_error, t0))


async def _seed_bulk(db: Path, start: int, stop: int, every_error: int, t0: float) -> float:
    """Only terminal queues: a started service must find nothing to resume or launch."""
    from queue_manager.adapters.sqlite_store import SQLiteStore
    from queue_manager.domain.models import StepStatus

    store = SQLiteStore(db, busy_timeout_ms=60_000)
    await store.open()
    queue = template_queue()
    began = time.perf_counter()
    try:
        for i in range(start, stop):
            created = dt.datetime.fromtimestamp(t0 + i * 0.001, dt.UTC)
            status = "error" if i % every_error == 0 else "finished"
            for step in queue.steps:
                step.status = StepStatus(status)
            retarget(queue, str(uuid.uuid4()), created, status)
            await store.insert(queue, None)
    finally:
        await store.close()
    return time.perf_counter() - began


def seed_bulk(db: Path, count: int, *, every_error: int = 100, procs: int = 0) -> float:
    """Insert `count` queues through SQLiteStore.insert from several processes; returns seconds."""
    import multiprocessing

    procs = procs or (os.cpu_count() or 1)
    # Create the schema once before the writers race for it.
    asyncio.run(_seed_bulk(db, 0, 0, every_error, 0))
    t0 = time.time() - count * 0.001
    chunks = [(str(db), count * k // procs, count * (k + 1) // procs, every_error, t0)
              for k in range(procs)]
    began = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(procs) as pool:
        pool.map(_seed_bulk_worker, chunks)
    return time.perf_counter() - began


def start_queues(url: str, count: int, concurrency: int = 8) -> list[Seeded]:
    """Start `count` single-step queues through the API (each launches an idle local worker)."""
    from queue_manager.domain import naming
    from queue_manager.domain.models import Target

    body = {"symbol": "BTCUSDT", "type": "api_candles_5m", "time_range": "2024-06-01:2024-06-30"}
    out: list[Seeded] = []

    async def worker(n: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            for _ in range(n):
                r = await client.post("/queues/start", json=body)
                r.raise_for_status()
                qid = r.json()["data"]["queue_id"]
                out.append(Seeded(qid, naming.telemetry_id(qid, 0, Target.LOADER)))

    async def main() -> None:
        await asyncio.gather(*(worker(count * (k + 1) // concurrency - count * k // concurrency)
                               for k in range(concurrency)))

    asyncio.run(main())
    return out
