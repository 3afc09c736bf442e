"""P10 — admission: 1,000 queued queues (quick: 200) drained under MAX_RUNNING_QUEUES=50.

The service (SQLite, in-process bus, LAUNCHER_BACKEND=kubernetes against a real kube-apiserver
+ etcd, KUBE_QPS=0 so the launcher's rate limit does not set the pace) is built by
`bench.stores:counting_app`: the real `create_app` with a SQLiteStore subclass that times each
`admit` transaction (write lock held: BEGIN IMMEDIATE to COMMIT) and counts its SQL statements
(sqlite3 trace callback). 8 HTTP clients start the single-step queues while a bench-side
lightkube watch marks every Job the service creates `Complete` (status subresource, as a Job
controller would), so each finished queue frees a slot and the service admits the next.
Decisions/s = (admissions − 1) / time from the first to the last `admission` event in the
history. Baseline, on a copy of the same file afterwards: python's sqlite3 running the
admission's own statements per decision (BEGIN IMMEDIATE; the running count with the same
`json_extract`; the first queued row by priority, created, id; its document decoded and
re-encoded with orjson; the UPDATE; one history INSERT; COMMIT), with 50 queues running and
one of them ended (untimed) before each decision.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import time
from datetime import datetime
from pathlib import Path

import orjson

from bench.config import Config
from bench.profile import profiled
from bench.report import Row
from bench.seeding import start_queues
from bench.services import service

LIMIT = 50
RUNNING = ("pending", "loading", "stopping")
IS_PARENT = "json_extract(CAST(doc AS TEXT), '$.backfill') IS NOT NULL"


async def complete_jobs(server, namespace: str, stop: asyncio.Event) -> int:
    """Mark every Job that appears `Complete`; returns how many."""
    from lightkube import AsyncClient, KubeConfig
    from lightkube.resources.batch_v1 import Job
    from lightkube.types import PatchType
    from tests.support.kube_apiserver import succeeded_job_status

    client = AsyncClient(KubeConfig.from_file(str(server.kubeconfig_path)), namespace=namespace)
    done: set[str] = set()

    async def finish(name: str) -> None:
        await client.patch(Job.Status, name, {"status": succeeded_job_status()},
                           namespace=namespace, patch_type=PatchType.MERGE)  # fmt: skip

    async def watch() -> None:
        tasks: set[asyncio.Task[None]] = set()
        async for kind, job in client.watch(Job, namespace=namespace):
            name = job.metadata.name
            if kind == "ADDED" and name not in done and not (job.status and job.status.succeeded):
                done.add(name)
                task = asyncio.create_task(finish(name))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

    watcher = asyncio.create_task(watch())
    await stop.wait()
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    await client.close()
    return len(done)


async def drive(url: str, server, count: int, db: Path) -> tuple[int, float]:
    stop = asyncio.Event()
    completer = asyncio.create_task(complete_jobs(server, "default", stop))
    await asyncio.sleep(0.5)  # the watch is open before the first Job
    began = time.perf_counter()
    await asyncio.to_thread(start_queues, url, count)
    while finished(db) < count and time.perf_counter() - began < 600:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    elapsed = time.perf_counter() - began
    stop.set()
    return await completer, elapsed


def finished(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return int(conn.execute(
            "SELECT COUNT(*) FROM queue_state WHERE status = 'finished'").fetchone()[0])


def admissions(db: Path) -> list[datetime]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT doc FROM queue_events").fetchall()
    out = []
    for (doc,) in rows:
        event = orjson.loads(doc)
        if event["kind"] == "admission" and event.get("to") == "admitted":
            out.append(datetime.fromisoformat(event["at"]))
    return sorted(out)


def raw_admissions(db: Path, count: int) -> tuple[float, int]:
    """ms per decision with the admission's statements run directly; statements per decision."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    ids = [r[0] for r in conn.execute("SELECT id FROM queue_state ORDER BY created, id")]
    conn.execute("UPDATE queue_state SET status = 'queued'")
    running = ids[:LIMIT]
    conn.executemany("UPDATE queue_state SET status = 'loading' WHERE id = ?",
                     [(i,) for i in running])  # fmt: skip
    marks = ",".join("?" * len(RUNNING))
    statements = [0]
    conn.set_trace_callback(lambda _: statements.__setitem__(0, statements[0] + 1))
    spent = 0.0
    decisions = 0
    for n in range(count):
        conn.execute("UPDATE queue_state SET status = 'finished' WHERE id = ?", (running[n],))
        before = statements[0]
        began = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        rows = conn.execute(
            f"SELECT parent, {IS_PARENT} FROM queue_state WHERE status IN ({marks})", RUNNING
        ).fetchall()
        free = LIMIT - sum(1 for _, is_parent in rows if not is_parent)
        row = conn.execute(
            "SELECT doc FROM queue_state WHERE status = 'queued' "
            "ORDER BY priority DESC, created, id LIMIT ? OFFSET 0", (free,)
        ).fetchone()
        if row is None:
            conn.execute("COMMIT")
            break
        doc = orjson.loads(row[0])
        doc["status"] = "pending"
        conn.execute(
            "UPDATE queue_state SET status = ?, version = version + 1, doc = ?, priority = ?, "
            "jobs = ? WHERE id = ?", ("pending", orjson.dumps(doc), 0, "", doc["id"])
        )
        event = {"seq": 1000 + n, "at": "2026-01-01T00:00:00Z", "kind": "admission",
                 "to": "admitted", "actor": "launcher"}  # fmt: skip
        conn.execute("INSERT INTO queue_events (queue_id, seq, doc) VALUES (?, ?, ?)",
                     (doc["id"], event["seq"], orjson.dumps(event)))  # fmt: skip
        conn.execute("COMMIT")
        spent += time.perf_counter() - began
        decisions += 1
        per = statements[0] - before
        running.append(doc["id"])
    conn.close()
    return spent / max(decisions, 1) * 1e3, per


def run(cfg: Config) -> list[Row]:
    from tests.support.kube_apiserver import start_kube_apiserver

    count = cfg.size(1_000, 200)
    server = start_kube_apiserver(cfg.workdir / "kube")
    try:
        svc = service(cfg, "p10", kafka=False, LAUNCHER_BACKEND="kubernetes",
                      KUBECONFIG=str(server.kubeconfig_path), K8S_NAMESPACE="default",
                      MAX_RUNNING_QUEUES=str(LIMIT), KUBE_QPS="0", RECONCILE_SECONDS="5")
        svc.app = "bench.stores:counting_app"
        db = svc.data_dir / "queue-manager.db"
        with svc, profiled(svc, "p10", cfg, seconds=20):
            completed, elapsed = asyncio.run(drive(svc.url, server, count, db))
    finally:
        server.stop()
    stats = json.loads((db.parent / "store-stats.json").read_text())
    times = admissions(db)
    span = (times[-1] - times[0]).total_seconds() if len(times) > 1 else 0.0
    rate = (len(times) - 1) / span if span else None
    copy = cfg.workdir / "p10-raw" / "queue-manager.db"
    copy.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(db) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    raw_ms, raw_statements = raw_admissions(copy, count - LIMIT)
    shutil.rmtree(copy.parent, ignore_errors=True)
    admitted = stats["admitted"] or 1
    store_ms = stats["admit_seconds"] / admitted * 1e3
    per_statement = stats["admit_statements"] / admitted
    raw_rate = 1e3 / raw_ms
    return [
        Row(f"P10 admission decisions/s, {count:,} queued, MAX_RUNNING_QUEUES={LIMIT}", rate,
            "/s", raw_rate, "same statements in sqlite3, back to back", "—", None,
            note=f"{len(times):,} admissions over {span:.1f} s; all {count:,} finished "
            f"{elapsed:.1f} s after the first start; {completed:,} Jobs marked Complete by "
            "the bench."),
        Row("P10 store time per admission decision", store_ms, "ms", raw_ms,
            "same statements in sqlite3", "—", None,
            note=f"{stats['admit_calls']:,} admit transactions ({stats['admit_empty_calls']:,} "
            f"admitted nothing) for {stats['admitted']:,} admissions; "
            f"{per_statement:.1f} SQL statements per admission, empty transactions included "
            f"(sqlite3 baseline: "
            f"{raw_statements}); time is the write lock held (BEGIN IMMEDIATE to COMMIT)."),
    ]
