"""Kafka for the benchmarks: the run's broker (tests/support/kafka_broker.py, started once) and
producers of worker-shaped events."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from bench.config import Config
    from bench.seeding import Seeded


class LazyBroker:
    """A broker started at most once: ahead of time in a thread, or on first use."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.broker: Any = None  # tests.support.kafka_broker.KafkaBroker
        self._starting: threading.Thread | None = None

    def _start(self) -> None:
        from tests.support.kafka_broker import start_broker

        self.broker = start_broker(self.folder)

    def prestart(self) -> None:
        self._starting = threading.Thread(target=self._start, daemon=True)
        self._starting.start()

    def get(self) -> Any:
        if self._starting is not None:
            self._starting.join()
            self._starting = None
        if self.broker is None:
            self._start()
        return self.broker

    def close(self) -> None:
        if self._starting is not None:
            self._starting.join()
            self._starting = None
        if self.broker is not None:
            self.broker.stop()
            self.broker = None


async def produce_all(cfg: Config, topic: str, items: Sequence[tuple[bytes, bytes]]) -> float:
    """Send (key, value) pairs as fast as the producer batches them; returns seconds."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        **cfg.kafka().client_kwargs(sasl=False), linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    began = time.perf_counter()
    try:
        pending = [await producer.send(topic, value, key=key) for key, value in items]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - began


def micros_since(t_base: float) -> int:
    """The `records_written` a benchmark event carries: its send time, µs after t_base."""
    return int((time.time() - t_base) * 1e6)


async def paced_events(
    cfg: Config, topic: str, seeded: Sequence[Seeded], rate: float, seconds: float, t_base: float
) -> list[tuple[str, int]]:
    """Worker-shaped `loading` events at `rate`/s, round-robin over the queues, each carrying its
    send time in records_written (µs after t_base). Returns (queue_id, records_written) sent."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(**cfg.kafka().client_kwargs(sasl=False))
    await producer.start()
    sent: list[tuple[str, int]] = []
    pending = []
    try:
        start = time.perf_counter()
        total = int(rate * seconds)
        for n in range(total):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # the pace of the load, not a wait
            s = seeded[n % len(seeded)]
            rw = micros_since(t_base)
            body = {
                "event": "loading",
                "queue_id": s.queue_id,
                "producer": s.producer,
                "records_written": rw,
                "sent_at": dt.datetime.now(dt.UTC).isoformat(),
            }
            pending.append(await producer.send(topic, orjson.dumps(body), key=s.queue_id.encode()))
            sent.append((s.queue_id, rw))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent
