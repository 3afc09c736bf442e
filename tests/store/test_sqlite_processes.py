"""Two service processes, one SQLite file: 10,000 interleaved telemetry updates, none lost."""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from queue_manager.adapters.sqlite_store import SQLiteStore
from queue_manager.domain.models import QueueState, QueueStatus, StepStatus
from queue_manager.domain.state import apply_telemetry
from queue_manager.domain.telemetry import Reported, TelemetryEvent
from tests.store.helpers import make_queue, update_one

PROCESSES = 2
QUEUES = 4
UPDATES = 10_000  # in total, across both processes
PER_PROCESS = UPDATES // PROCESSES


def records_for(process: int, i: int) -> int:
    """Counts grow in each process and interleave between them (0: even, 1: odd)."""
    return 2 * i + process + 1


async def _writer(path: str, process: int, queue_ids: list[str], start: Any) -> dict[str, int]:
    store = SQLiteStore(Path(path))
    await store.open()
    regressions = 0
    interleaved = 0  # updates that found a write of the other process since our last one
    seen: dict[str, int] = dict.fromkeys(queue_ids, 0)
    theirs: dict[str, int] = dict.fromkeys(queue_ids, 0)
    start.wait()  # both processes begin together
    try:
        for i in range(PER_PROCESS):
            qid = queue_ids[i % len(queue_ids)]
            event = TelemetryEvent(
                queue_id=qid,
                status=Reported.LOADING,
                producer=f"{qid}-0",
                records_written=records_for(process, i),
            )

            def mutate(q: QueueState, event: TelemetryEvent = event) -> bool:
                nonlocal regressions, interleaved
                step = q.steps[0]
                if step.records_written < seen[q.id]:
                    regressions += 1  # a stored count went backwards: a lost update
                other = sum(v for k, v in step.params.items() if k != f"updates_by_{process}")
                if other != theirs[q.id]:
                    interleaved += 1
                    theirs[q.id] = other
                apply_telemetry(q, step, event, datetime.now(UTC))
                key = f"updates_by_{process}"
                step.params[key] = step.params.get(key, 0) + 1
                return True

            stored = await update_one(store, qid, mutate)
            assert stored is not None
            seen[qid] = stored.steps[0].records_written
    finally:
        await store.close()
    return {"regressions": regressions, "interleaved": interleaved}


def _run_writer(path: str, process: int, queue_ids: list[str], start: Any, out: Any) -> None:
    out.put((process, asyncio.run(_writer(path, process, queue_ids, start))))


def _collect(out: Any, procs: list[Any], deadline: float) -> dict[int, dict[str, int]]:
    """Each writer's report; fails at once if one dies, and never waits past the deadline."""
    reports: dict[int, dict[str, int]] = {}
    while len(reports) < len(procs):
        try:
            process, report = out.get(timeout=0.5)
            reports[process] = report
            continue
        except queue.Empty:
            pass
        dead = [p.exitcode for p in procs if not p.is_alive() and p.exitcode != 0]
        assert not dead, f"a writer process failed (exit codes {dead})"
        assert time.monotonic() < deadline, f"writers too slow; reports so far: {reports}"
    return reports


async def test_two_processes_lose_no_update(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    store = SQLiteStore(path)
    await store.open()
    try:
        queues = [make_queue() for _ in range(QUEUES)]
        for q in queues:
            await store.insert(q, None)
        ids = [q.id for q in queues]

        ctx = multiprocessing.get_context("spawn")
        start = ctx.Event()
        out = ctx.Queue()
        procs = [
            ctx.Process(target=_run_writer, args=(str(path), p, ids, start, out))
            for p in range(PROCESSES)
        ]
        for proc in procs:
            proc.start()
        start.set()
        try:
            reports = await asyncio.to_thread(_collect, out, procs, deadline=time.monotonic() + 240)
        finally:
            for proc in procs:
                if proc.is_alive():
                    proc.kill()
                proc.join(5)

        print("interleaving:", reports)
        assert [r["regressions"] for r in reports.values()] == [0] * PROCESSES
        # the writes really interleaved: each process kept finding the other's updates
        assert all(r["interleaved"] >= 10 for r in reports.values()), reports
        per_queue = PER_PROCESS // QUEUES
        for n, qid in enumerate(ids):
            final = await store.get(qid)
            assert final is not None
            step = final.steps[0]
            sent = [
                records_for(p, i)
                for p in range(PROCESSES)
                for i in range(PER_PROCESS)
                if i % QUEUES == n
            ]
            assert step.records_written == max(sent)  # no regression
            assert step.params == {f"updates_by_{p}": per_queue for p in range(PROCESSES)}
            assert sum(step.params.values()) == UPDATES // QUEUES  # no lost update
            assert step.status is StepStatus.LOADING and final.status is QueueStatus.LOADING
    finally:
        await store.close()
