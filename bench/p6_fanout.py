"""P6 — WebSocket fan-out.

1,000 WebSocket readers (quick: 200) on /ws/topic?batch=1&ack=1 — several updates per frame,
each frame answered once the reader has handled it, as the dashboard does — plus one client that never reads, split over 4 client processes of 250
readers (quick: 2 of 100) (no permessage-deflate, so the readers cost less CPU). The service
conflates per client (a slow reader gets the latest value of each key), so "received per
reader" may be below the events sent. Two phases on the same connections: (a) the goal's load, worker events into Kafka at 500/s over 100 running
queues, which the service turns into ~1,000 updates/s (a `step.updated` and a `queue.updated`
per change) for every reader; (b) run first, a sustainable load of 10 events/s (~20 updates/s)
to see the hub's own latency when the machine is not saturated. Delivery latency = arrival − the
event's send time, over every `step.updated` each reader got (each element of a batch frame).
CPU seconds (utime + stime from /proc/<pid>/stat) of the service process and of the client
processes are read before and after each phase and reported in the notes. Memory per client = service RSS
delta from before the clients connected to after, over the clients. Baseline, right after, on
the same readers: a bare FastAPI WebSocket broadcaster (a bounded queue and a sender task per
client, one update per frame: it ignores `?batch=1&ack=1` and discards the answers) publishing the same number of messages per
second of the same shape. 20 s per phase
(quick: 3 s).
"""

from __future__ import annotations

import asyncio
import time

import httpx
from tests.support.service import Service

from bench.config import Config
from bench.kafka import paced_events
from bench.machine import cpu_seconds, rss_mb
from bench.profile import profiled
from bench.report import Row, fmt
from bench.seeding import start_queues
from bench.services import bare, service
from bench.stats import hist_percentile
from bench.ws_readers import WsReaders

RATES = {"goal": 500, "light": 10}  # worker events/s; updates/s are twice that
QUEUES = 100


def summary(result: dict, clients: int, cpu: tuple[float, float]) -> dict:
    hist = result["hist"]
    return {
        "p99": hist_percentile(hist, 99),
        "p50": hist_percentile(hist, 50),
        "per_reader": sum(hist.values()) / max(clients, 1),
        "dropped": sum(1 for c in result["closed"] if c == 1013),
        "connected": result["connected"],
        "cpu_server": cpu[0],
        "cpu_clients": cpu[1],
    }


def cpu_now(server: Service, readers: WsReaders) -> tuple[float, float]:
    return cpu_seconds([server.pid]), cpu_seconds(readers.pids)


def spent(before: tuple[float, float], after: tuple[float, float]) -> tuple[float, float]:
    return after[0] - before[0], after[1] - before[1]


def run(cfg: Config) -> list[Row]:
    clients = cfg.size(1_000, 200)
    procs = cfg.size(4, 2)
    seconds = cfg.size(20, 3)
    phases = ("light", "goal")
    svc = service(cfg, "p6", kafka=True, RECONCILE_SECONDS="5")
    t_base = time.time()
    got: dict[str, dict] = {}
    with svc:
        seeded = start_queues(svc.url, QUEUES)
        time.sleep(1)
        before = rss_mb(svc.pid)
        readers = WsReaders(svc.ws_url + "/ws/topic?batch=1&ack=1", cfg.workdir / "p6-svc.json",
                          clients=clients, silent=1, t_base=t_base, drain=1.5,
                          procs=procs).start()
        time.sleep(1)
        mem = (rss_mb(svc.pid) - before) * 1024 / (clients + 1)
        for phase in phases:
            cpu = cpu_now(svc, readers)
            readers.go(seconds)
            with profiled(svc, f"p6-{phase}", cfg, seconds=seconds):
                asyncio.run(paced_events(cfg, svc.env["QUEUE_EVENTS_TOPIC"], seeded,
                                         RATES[phase], seconds, t_base))
            result = readers.result()
            got[phase] = summary(result, clients, spent(cpu, cpu_now(svc, readers)))
        readers.close()

    base: dict[str, dict] = {}
    with bare(cfg, "p6") as app:
        time.sleep(1)
        before = rss_mb(app.pid)
        readers = WsReaders(app.ws_url + "/ws/topic?batch=1&ack=1", cfg.workdir / "p6-bare.json",
                          clients=clients, silent=1, t_base=t_base, drain=1.5,
                          procs=procs).start()
        time.sleep(1)
        b_mem = (rss_mb(app.pid) - before) * 1024 / (clients + 1)
        for phase in phases:
            cpu = cpu_now(app, readers)
            readers.go(seconds)
            httpx.post(app.url + "/publish", params={"rate": 2 * RATES[phase],
                                                     "seconds": seconds, "t_base": t_base})
            time.sleep(seconds)
            result = readers.result()
            base[phase] = summary(result, clients, spent(cpu, cpu_now(app, readers)))
        readers.close()

    rows = []
    for phase in ("goal", "light"):
        s, b = got[phase], base[phase]
        sent = RATES[phase] * seconds
        label = (f"P6 fan-out p99, {clients:,} readers + 1 silent, "
                 f"~{2 * RATES[phase]:,} updates/s")
        rows.append(Row(
            label, s["p99"], "ms", b["p99"], "bare FastAPI broadcaster",
            "≤ 250 ms" if phase == "goal" else "—",
            (s["p99"] is not None and s["p99"] <= 250 and s["dropped"] == 0)
            if phase == "goal" else None,
            note=f"{s['connected']} readers connected; step updates received per reader: "
            f"{s['per_reader']:,.0f} (bare: {b['per_reader']:,.0f}) of {sent:,} events sent; "
            f"readers disconnected as too slow (1013): {s['dropped']} (bare: {b['dropped']}); "
            f"p50 {fmt(s['p50'], 'ms')} (bare: {fmt(b['p50'], 'ms')}); "
            f"CPU over the phase: service process {s['cpu_server']:.1f} s "
            f"(bare: {b['cpu_server']:.1f} s), the {procs} reader processes "
            f"{s['cpu_clients']:.1f} s (bare: {b['cpu_clients']:.1f} s) — "
            f"readers on /ws/topic?batch=1&ack=1 (each frame answered once handled)."))
    rows.append(Row("P6 memory per WebSocket client", mem, "KiB", b_mem,
                  "bare FastAPI broadcaster", "—", None))
    return rows
