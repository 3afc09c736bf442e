"""P6 — WebSocket fan-out.

1,000 WebSocket readers (quick: 200) on /ws/topic plus one client that never reads, all in one
separate client process (no permessage-deflate, so the readers cost less CPU). Two phases on the
same connections: (a) the goal's load, worker events into Kafka at 500/s over 100 running
queues, which the service turns into ~1,000 updates/s (a `step.updated` and a `queue.updated`
per change) for every reader; (b) run first, a sustainable load of 10 events/s (~20 updates/s)
to see the hub's own latency when the machine is not saturated. Delivery latency = arrival − the
event's send time, over every `step.updated` each reader got. Memory per client = service RSS
delta from before the clients connected to after, over the clients. Baseline, right after, on
the same readers: a bare FastAPI WebSocket broadcaster (a bounded queue and a sender task per
client) publishing the same number of messages per second of the same shape. 20 s per phase
(quick: 3 s).
"""

from __future__ import annotations

import time

import httpx

from bench import harness as h

RATES = {"goal": 500, "light": 10}  # worker events/s; updates/s are twice that
QUEUES = 100


def summary(result: dict, clients: int) -> dict:
    lat = result["latencies_ms"]
    return {
        "p99": h.percentile(lat, 99),
        "per_reader": len(lat) / max(clients, 1),
        "dropped": sum(1 for c in result["closed"] if c == 1013),
        "connected": result["connected"],
    }


def run(cfg: h.Config) -> list[h.Row]:
    clients = cfg.size(1_000, 200)
    seconds = cfg.size(20, 3)
    phases = ("light", "goal")
    svc = h.service(cfg, "p6", kafka=True, RECONCILE_SECONDS="5")
    t_base = time.time()
    got: dict[str, dict] = {}
    with svc:
        seeded = h.start_queues(svc.url, QUEUES)
        time.sleep(1)
        before = h.rss_mb(svc.pid)
        readers = h.WsReaders(svc.ws_url + "/ws/topic", cfg.workdir / "p6-svc.json",
                              clients=clients, silent=1, t_base=t_base, drain=1.5).start()
        time.sleep(1)
        mem = (h.rss_mb(svc.pid) - before) * 1024 / (clients + 1)
        for phase in phases:
            readers.go(seconds)
            with h.profiled(svc, f"p6-{phase}", cfg, seconds=seconds):
                h.run(h.paced_events(cfg, svc.env["QUEUE_EVENTS_TOPIC"], seeded, RATES[phase],
                                     seconds, t_base))
            got[phase] = summary(readers.result(), clients)
        readers.close()

    base: dict[str, dict] = {}
    with h.bare(cfg, "p6") as app:
        time.sleep(1)
        before = h.rss_mb(app.pid)
        readers = h.WsReaders(app.ws_url + "/ws/topic", cfg.workdir / "p6-bare.json",
                              clients=clients, silent=1, t_base=t_base, drain=1.5).start()
        time.sleep(1)
        b_mem = (h.rss_mb(app.pid) - before) * 1024 / (clients + 1)
        for phase in phases:
            readers.go(seconds)
            httpx.post(app.url + "/publish", params={"rate": 2 * RATES[phase],
                                                     "seconds": seconds, "t_base": t_base})
            time.sleep(seconds)
            base[phase] = summary(readers.result(), clients)
        readers.close()

    rows = []
    for phase in ("goal", "light"):
        s, b = got[phase], base[phase]
        sent = RATES[phase] * seconds
        label = (f"P6 fan-out p99, {clients:,} readers + 1 silent, "
                 f"~{2 * RATES[phase]:,} updates/s")
        rows.append(h.Row(
            label, s["p99"], "ms", b["p99"], "bare FastAPI broadcaster",
            "≤ 250 ms" if phase == "goal" else "—",
            (s["p99"] is not None and s["p99"] <= 250 and s["dropped"] == 0)
            if phase == "goal" else None,
            note=f"{s['connected']} readers connected; step updates received per reader: "
            f"{s['per_reader']:,.0f} (bare: {b['per_reader']:,.0f}) of {sent:,} events sent; "
            f"readers disconnected as too slow (1013): {s['dropped']} (bare: {b['dropped']})."))
    rows.append(h.Row("P6 memory per WebSocket client", mem, "KiB", b_mem,
                      "bare FastAPI broadcaster", "—", None))
    return rows
