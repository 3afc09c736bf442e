"""P5 — API read throughput: wrk on `GET /queues/{id}`.

The service (embedded, one uvicorn worker) answers one stored queue; the baseline is a bare
FastAPI app on the same uvicorn with the same worker count answering the very same JSON (the
service's own answer, parsed at start-up, serialised per request). wrk runs 1 thread, 32
connections, for 15 s (quick: 4 s) against each, one right after the other.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess

import httpx
import orjson

from bench.config import Config
from bench.profile import profiled
from bench.report import Row, fmt
from bench.seeding import seed_running
from bench.services import bare, service


def wrk(url: str, seconds: int) -> tuple[float, float | None]:
    out = subprocess.run(
        ["wrk", "-t1", "-c32", f"-d{seconds}s", "--latency", url],
        capture_output=True, text=True, check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p50 = None
    if m:
        p50 = float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
    return rps, p50


def run(cfg: Config) -> list[Row]:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (make bench installs it with apt-get)")
    seconds = cfg.size(15, 4)
    svc = service(cfg, "p5", kafka=False, LAUNCH_GRACE_SECONDS="3600")
    seeded = asyncio.run(seed_running(svc.data_dir / "queue-manager.db", 1))
    path = f"/queues/{seeded[0].queue_id}"
    doc = cfg.workdir / "p5" / "doc.json"
    with svc:
        doc.write_bytes(httpx.get(svc.url + path).content)
        with profiled(svc, "p5", cfg, seconds=seconds):
            rps, p50 = wrk(svc.url + path, seconds)
    with bare(cfg, "p5", BARE_DOC=str(doc)) as app:
        assert httpx.get(app.url + path).json() == orjson.loads(doc.read_bytes())
        b_rps, b50 = wrk(app.url + path, seconds)
    return [
        Row("P5 GET /queues/{id} (wrk, 32 conns)", rps, "req/s", b_rps, "bare FastAPI",
          "≥ 0.5×", rps >= 0.5 * b_rps,
          note=f"p50 {fmt(p50, 'ms')} vs {fmt(b50, 'ms')} bare; one uvicorn worker "
          "each; wrk shares the 2 CPUs with the server."),
    ]
