"""P3 — listing at scale.

1,000,000 queues (quick: 100,000) are created through `SQLiteStore.insert`, one process per CPU
(1 % `error`, the rest `finished`, 1 ms apart). Then over HTTP (httpx, one request at a time):
`GET /queues?limit=100` (first page), a deep page (a cursor 90 % of the way down) and
`?status=error&limit=100`. Baseline, right after each: the same SQL run directly on the same file
with sqlite3 and every document decoded (the floor the store could reach). Also bytes on disk per
queue (database + WAL after the inserts).
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import httpx
import orjson

from bench.config import REPO, WORK, Config
from bench.profile import profiled
from bench.report import Row
from bench.seeding import seed_bulk
from bench.services import service
from bench.stats import percentile

SQL = ("SELECT doc, created, id FROM queue_state{where} ORDER BY created DESC, id DESC "
       "LIMIT 101")


def raw_query(db: Path, where: str, args: tuple, n: int) -> list[float]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    out = []
    try:
        for _ in range(n):
            began = time.perf_counter()
            rows = conn.execute(SQL.format(where=where), args).fetchall()
            [orjson.loads(r[0]) for r in rows]
            out.append((time.perf_counter() - began) * 1e3)
    finally:
        conn.close()
    return out


def http_query(url: str, params: dict, n: int) -> list[float]:
    out = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(n + 5):
            began = time.perf_counter()
            r = client.get("/queues", params=params)
            r.raise_for_status()
            if i >= 5:  # warm-up
                out.append((time.perf_counter() - began) * 1e3)
    return out


def cached_store(count: int) -> tuple[Path, float]:
    """The seeded file is kept in .cache/bench/seed/, keyed by the count and the store's and
    models' source: later runs reuse it (the seeding time reported is the original one)."""
    import hashlib
    import json

    src = REPO / "src" / "queue_manager"
    digest = hashlib.sha1()
    # the store is a module or a package of them
    store = sorted((src / "adapters").glob("sqlite_store.py"))
    store += sorted((src / "adapters" / "sqlite_store").glob("*.py"))
    for path in [*store, src / "domain" / "models.py"]:
        digest.update(path.read_bytes())
    folder = WORK / "seed" / f"p3-{count}-{digest.hexdigest()[:10]}"
    db, meta = folder / "queue-manager.db", folder / "seeded.json"
    if not meta.exists():
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        seconds = seed_bulk(db, count)
        meta.write_text(json.dumps({"seconds": seconds}))
    return db, float(json.loads(meta.read_text())["seconds"])


def run(cfg: Config) -> list[Row]:
    from queue_manager.adapters import cursor as cursors

    count = cfg.size(1_000_000, 100_000)
    n = cfg.size(200, 60)
    db, seconds = cached_store(count)
    svc = service(cfg, "p3", kafka=False, SQLITE_PATH=str(db))
    size = sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        created, qid = conn.execute(
            "SELECT created, id FROM queue_state ORDER BY created DESC, id DESC LIMIT 1 OFFSET ?",
            (count * 9 // 10,),
        ).fetchone()
        avg_doc = conn.execute("SELECT AVG(LENGTH(doc)) FROM queue_state").fetchone()[0]
        try:
            table = conn.execute(
                "SELECT SUM(pgsize) FROM dbstat WHERE name = 'queue_state'").fetchone()[0]
        except sqlite3.Error:
            table = None
    cursor = cursors.encode(created, qid)
    cases = [
        ("first page", {"limit": 100}, "", ()),
        ("deep cursor page (90 %)", {"limit": 100, "cursor": cursor},
         " WHERE (created, id) < (?, ?)", (created, qid)),
        ("status=error", {"limit": 100, "status": "error"}, " WHERE status = ?", ("error",)),
    ]
    rows: list[Row] = []
    with svc:
        for name, params, where, args in cases:
            with profiled(svc, f"p3-{name.split()[0]}", cfg, seconds=10):
                got = http_query(svc.url, params, n)
            base = raw_query(db, where, args, n)
            p50, p99 = percentile(got, 50), percentile(got, 99)
            b50, b99 = percentile(base, 50), percentile(base, 99)
            rows.append(Row(f"P3 list {count:,}: {name} p50", p50, "ms", b50,
                          "same SQL + decode, in-process", "≤ 20 ms",
                          p50 is not None and p50 <= 20))
            rows.append(Row(f"P3 list {count:,}: {name} p99", p99, "ms", b99,
                          "same SQL + decode, in-process", "—", None))
    rows.append(Row("P3 bytes on disk per queue", size / count, "B", None, "", "—", None,
                  note=f"{count:,} one-step queues inserted through SQLiteStore.insert in "
                  f"{seconds:.0f} s ({count / seconds:,.0f}/s, {os.cpu_count()} processes); "
                  f"{size / 2**20:,.0f} MiB on disk; average document {avg_doc:,.0f} B; the "
                  f"queue_state table alone takes "
                  f"{(table or 0) / count:,.0f} B per queue (dbstat)."))
    return rows
