"""P7 — idle footprint and start-up of the embedded service.

The service is started with no external system (SQLite, in-process bus, local launcher) and
timed from spawn to the first 200 on /health/ready; its RSS (with any children) is read after
1.5 s idle. Baseline: a bare FastAPI + uvicorn hello app, started the same way (spawn → first 200
on /ready). Three rounds (quick: two), alternating service and baseline; medians reported.
"""

from __future__ import annotations

import time

from bench.config import Config
from bench.machine import rss_mb
from bench.report import Row
from bench.services import bare, service
from bench.stats import median


def run(cfg: Config) -> list[Row]:
    starts, rss, b_starts, b_rss = [], [], [], []
    for i in range(cfg.size(3, 2)):
        with service(cfg, f"p7-{i}", kafka=False) as svc:
            starts.append(svc.ready_after)
            time.sleep(1.5)
            rss.append(rss_mb(svc.pid))
        with bare(cfg, f"p7-{i}") as app:
            b_starts.append(app.ready_after)
            time.sleep(1.5)
            b_rss.append(rss_mb(app.pid))
    s, bs = median(starts), median(b_starts)
    r, br = median(rss), median(b_rss)
    return [
        Row("P7 idle RSS (embedded)", r, "MiB", br, "bare FastAPI hello", "≤ 120 MB",
            r is not None and r <= 120 * 1e6 / 2**20,
            note=f"rounds: {', '.join(f'{x:.0f}' for x in rss)} MiB"),
        Row("P7 start → ready (embedded)", s, "s", bs, "bare FastAPI hello", "≤ 2 s",
            s is not None and s <= 2,
            note=f"rounds: {', '.join(f'{x:.2f}' for x in starts)} s (spawn of "
            f"`python -m uvicorn --factory` to the first 200 on /health/ready)"),
    ]
