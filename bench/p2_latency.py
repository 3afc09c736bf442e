"""P2 — end-to-end latency, worker event on Kafka → WebSocket client.

A producer sends worker-shaped events at 2,000/s for 60 s (quick: 10 s), round-robin over 100
running queues; one WebSocket client on /ws/topic records when the first `step.updated` showing
each event's records_written (or a later value of the same queue) arrives. latency = arrival −
send time. Baseline, right before (20 s; quick: 5 s): the same producer into a bare aiokafka
consumer (the Kafka hop alone, which the service's path crosses twice: telemetry in, live update
relay out).
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import time
import uuid

from bench.config import Config
from bench.kafka import paced_events
from bench.profile import profiled
from bench.report import Row
from bench.seeding import Seeded, start_queues
from bench.services import service
from bench.stats import percentile
from bench.ws_readers import WsReaders

RATE = 2_000
QUEUES = 100


async def kafka_only(cfg: Config, seconds: float) -> list[float]:
    from aiokafka import AIOKafkaConsumer

    topic = f"p2-bare-{uuid.uuid4().hex[:8]}"
    seeded = [Seeded(f"q{i}", f"p{i}") for i in range(QUEUES)]
    consumer = AIOKafkaConsumer(topic, **cfg.kafka().client_kwargs(sasl=False),
                                auto_offset_reset="earliest")
    await consumer.start()
    lat: list[float] = []
    t_base = time.time()

    async def consume() -> None:
        import orjson

        while True:
            records = await consumer.getmany(timeout_ms=100)
            now = time.time()
            for batch in records.values():
                for r in batch:
                    rw = orjson.loads(r.value)["records_written"]
                    lat.append((now - t_base) * 1e3 - rw / 1e3)

    task = asyncio.create_task(consume())
    try:
        await paced_events(cfg, topic, seeded, RATE, seconds, t_base)
        await asyncio.sleep(2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await consumer.stop()
    return lat


def join(sent: list[tuple[str, int]], dump: list[list], t_base: float) -> tuple[list[float], int]:
    """Per event: the first update of its queue whose records_written ≥ the event's."""
    seen: dict[str, tuple[list[int], list[float]]] = collections.defaultdict(lambda: ([], []))
    for queue_id, rw, arrival in dump:
        rws, arrivals = seen[queue_id]
        if rws and rw <= rws[-1]:
            continue
        rws.append(rw)
        arrivals.append(arrival)
    lat: list[float] = []
    missing = 0
    for queue_id, rw in sent:
        rws, arrivals = seen.get(queue_id, ([], []))
        i = bisect.bisect_left(rws, rw)
        if i == len(rws):
            missing += 1
            continue
        lat.append((arrivals[i] - t_base) * 1e3 - rw / 1e3)
    return lat, missing


def run(cfg: Config) -> list[Row]:
    seconds = 10.0 if cfg.quick else 60.0
    base = asyncio.run(kafka_only(cfg, 5.0 if cfg.quick else 20.0))

    svc = service(cfg, "p2", kafka=True, RECONCILE_SECONDS="5")
    t_base = time.time()
    with svc:
        seeded = start_queues(svc.url, QUEUES)
        time.sleep(1)  # consumer group joined
        readers = WsReaders(svc.ws_url + "/ws/topic", cfg.workdir / "p2-ws.json", clients=1,
                          t_base=t_base, dump=True, drain=3.0).start()
        readers.go(seconds)
        with profiled(svc, "p2", cfg, seconds=seconds):
            sent = asyncio.run(paced_events(cfg, svc.env["QUEUE_EVENTS_TOPIC"], seeded, RATE,
                                            seconds, t_base))
        result = readers.result()
        readers.close()
    lat, missing = join(sent, result["dump"], t_base)
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    b50, b99 = percentile(base, 50), percentile(base, 99)
    updates = len(result["dump"])
    note = (f"{len(sent):,} events at {RATE:,}/s for {seconds:.0f} s over {QUEUES} queues; "
            f"{updates:,} step updates reached the client; {missing:,} events never shown "
            f"within 3 s after the end.")
    return [
        Row("P2 end-to-end latency p50", p50, "ms", b50, "Kafka hop alone", "—", None,
          note=note),
        Row("P2 end-to-end latency p99", p99, "ms", b99, "Kafka hop alone", "≤ 100 ms",
          p99 is not None and p99 <= 100 and missing == 0),
    ]
