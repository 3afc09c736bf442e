"""docs/worker-protocol.md delivery: at-least-once, idempotent, poison messages skipped (real
broker)."""

from __future__ import annotations

import asyncio
import random
import signal
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from queue_manager.domain import state
from queue_manager.domain.models import QueueState
from queue_manager.domain.telemetry import Source, parse
from tests.support.kafka_broker import KafkaBroker
from tests.support.service import Service, wait_for

IDLE_WORKER = f'{sys.executable} -c "import time; time.sleep(3600)"'
T0 = datetime(2024, 6, 1, tzinfo=UTC)


@pytest.fixture
def idle_service(tmp_path: Path, running_kafka_broker: KafkaBroker) -> Iterator[Service]:
    """Workers that never report: every telemetry event comes from the test's own log."""
    env = {
        "BUS_BACKEND": "kafka",
        "KAFKA_GROUP_ID": f"qm-{tmp_path.name}",
        "QUEUE_EVENTS_TOPIC": f"events-{tmp_path.name}",
        "QUEUE_CONTROL_TOPIC": f"control-{tmp_path.name}",
        "LOCAL_WORKER_COMMAND": IDLE_WORKER,
        **running_kafka_broker.client_env(sasl=False),
    }
    svc = Service(tmp_path / "svc", env=env).start()
    yield svc
    svc.stop()
    svc.kill_workers()


def worker_log(queues: list[dict[str, Any]], per_queue: int) -> list[dict[str, Any]]:
    events = []
    for queue in queues:
        producer = queue["steps"][0]["telemetry_id"]
        base = {"queue_id": queue["id"], "producer": producer}
        events.append({**base, "event": "started", "records_written": 0})
        for n in range(1, per_queue - 1):
            events.append(
                {
                    **base,
                    "event": "loading",
                    "records_written": n * 7,
                    "last_loaded_timestamp": (T0 + timedelta(minutes=n)).isoformat(),
                }
            )
        events.append(
            {**base, "event": "finished", "records_written": (per_queue - 2) * 7, "finished": True}
        )
    return events


def produce(broker: KafkaBroker, topic: str, values: list[bytes], keys: list[str]) -> None:
    async def run() -> None:
        producer = AIOKafkaProducer(**broker.client_kwargs(sasl=False), linger_ms=20)
        await producer.start()
        try:
            futures = [
                await producer.send(topic, value, key=key.encode())
                for value, key in zip(values, keys, strict=True)
            ]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(run())


def expected(queue: dict[str, Any], events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    model = QueueState.model_validate(queue)
    for raw in events:
        event = parse(raw, Source.EVENTS)
        step = state.find_step(model, event)
        assert step is not None
        state.apply_telemetry(model, step, event, T0)
    return [(s.status.value, s.records_written, s.last_loaded_timestamp) for s in model.steps]


def observed(queue: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (
            s["status"],
            s["records_written"],
            datetime.fromisoformat(s["last_loaded_timestamp"])
            if s["last_loaded_timestamp"]
            else None,
        )
        for s in queue["steps"]
    ]


def test_sigkill_mid_stream_loses_nothing_and_replays_change_nothing(
    idle_service: Service, running_kafka_broker: KafkaBroker, single: dict[str, Any]
) -> None:
    svc = idle_service
    ids = [svc.start_queue({**single, "type": "api_trades"}) for _ in range(100)]
    wait_for(lambda: all(s["status"] == "launching" for s in svc.queue(ids[-1])["steps"]), 20)
    queues = [svc.queue(queue_id) for queue_id in ids]
    events = worker_log(queues, 100)
    assert len(events) == 10_000
    topic = svc.env["QUEUE_EVENTS_TOPIC"]

    svc.stop()
    produce(
        running_kafka_broker,
        topic,
        [orjson.dumps(e) for e in events],
        [e["queue_id"] for e in events],
    )
    svc.start()
    wait_for(lambda: any(svc.queue(q)["records_written"] > 0 for q in ids[::10]), 30, every=0.05)
    svc.stop(signal.SIGKILL)
    svc.start()

    def all_finished() -> bool:
        return all(svc.queue(q)["status"] == "finished" for q in ids)

    wait_for(all_finished, 120, every=1)
    by_queue = {q: [e for e in events if e["queue_id"] == q] for q in ids}
    for queue in queues:
        assert observed(svc.queue(queue["id"])) == expected(queue, by_queue[queue["id"]])

    # Duplicates and shuffled replays of the whole log change nothing.
    replay = events + random.Random(3).sample(events, 3000)
    random.Random(4).shuffle(replay)
    produce(
        running_kafka_broker,
        topic,
        [orjson.dumps(e) for e in replay],
        [e["queue_id"] for e in replay],
    )
    # A last message for no queue, on every partition's key: once it is rejected, the replay
    # before it has been applied.
    markers = [f"00000000-0000-4000-8000-{n:012d}" for n in range(12)]
    produce(
        running_kafka_broker,
        topic,
        [orjson.dumps({"event": "loading", "queue_id": m}) for m in markers],
        markers,
    )

    def rejected_marker() -> bool:
        return (
            'queue_manager_telemetry_rejected_total{reason="unknown_queue"} 12.0'
            in svc.get("/metrics").text
        )

    wait_for(rejected_marker, 60)
    for queue in queues:
        assert observed(svc.queue(queue["id"])) == expected(queue, by_queue[queue["id"]])


def test_poison_messages_are_counted_and_skipped(
    idle_service: Service, running_kafka_broker: KafkaBroker, single: dict[str, Any]
) -> None:
    svc = idle_service
    queue_id = svc.start_queue(single)
    producer_id = svc.queue(queue_id)["steps"][0]["telemetry_id"]
    poison = [
        b"{not json",
        orjson.dumps({"event": "loading", "queue_id": queue_id, "records_written": "lots"}),
        orjson.dumps({"event": "loading", "queue_id": queue_id, "pad": "x" * 1_000_000}),
        orjson.dumps([1, 2, 3]),
    ]
    good = orjson.dumps(
        {"event": "loading", "queue_id": queue_id, "producer": producer_id, "records_written": 42}
    )
    # Same key, same partition: the good message sits behind the poison.
    produce(running_kafka_broker, svc.env["QUEUE_EVENTS_TOPIC"], [*poison, good], [queue_id] * 5)
    wait_for(lambda: svc.queue(queue_id)["records_written"] == 42, 30)
    metrics = svc.get("/metrics").text
    for reason in ("invalid_json", "invalid_records_written", "too_large", "not_an_object"):
        assert f'queue_manager_telemetry_rejected_total{{reason="{reason}"}} 1.0' in metrics
    assert svc.get("/health/live").status_code == 200
