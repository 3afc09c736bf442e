"""The Kafka transport, with reference workers as real subprocesses against the real broker."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.support.waiting import wait_until_async

pytestmark = pytest.mark.kafka

TIMEOUT = 45.0


async def create_topics(broker, *topics: tuple[str, int]) -> None:
    admin = AIOKafkaAdminClient(**broker.client_kwargs(sasl=False))
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, num_partitions=n, replication_factor=1) for name, n in topics]
        )
    finally:
        await admin.close()


class EventLog:
    """Everything on the events topic since its beginning, read in the background."""

    def __init__(self, broker, topic: str) -> None:
        self.records: list[tuple[bytes | None, dict[str, Any]]] = []
        self._consumer = AIOKafkaConsumer(
            topic, group_id=None, auto_offset_reset="earliest", **broker.client_kwargs(sasl=False)
        )
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> EventLog:
        await self._consumer.start()
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._consumer.stop()

    async def _read(self) -> None:
        async for record in self._consumer:
            self.records.append((record.key, orjson.loads(record.value)))

    def events(self, producer: str) -> list[str]:
        return [body["event"] for _, body in self.records if body["producer"] == producer]

    async def wait_for(self, predicate, within: float = TIMEOUT, *, what=None) -> None:
        await wait_until_async(
            predicate, within, what=what, detail=lambda: f"events: {self.records}"
        )

    def since(self, mark: int, producer: str) -> list[str]:
        """The events of `producer` read after the first `mark` records (the topic's order)."""
        return [body["event"] for _, body in self.records[mark:] if body["producer"] == producer]


def kafka_env(broker, events: str, control: str, *, sasl: bool = False) -> dict[str, str | None]:
    return {
        **broker.client_env(sasl=sasl),
        "QUEUE_EVENTS_TOPIC": events,
        "QUEUE_CONTROL_TOPIC": control,
    }


def topics() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:10]
    return f"events-{suffix}", f"control-{suffix}"


async def exit_code(worker, within: float = TIMEOUT) -> int:
    return await asyncio.to_thread(worker.wait, within)


async def test_telemetry_goes_to_the_events_topic_keyed_by_queue(
    running_kafka_broker, spawn_worker
):
    events, control = topics()
    await create_topics(running_kafka_broker, (events, 2), (control, 3))
    async with EventLog(running_kafka_broker, events) as log:
        worker = spawn_worker(
            "loader-producer", "--duration", "1", "--tick", "0.2",
            env=kafka_env(running_kafka_broker, events, control),
        )  # fmt: skip
        producer = f"loader-producer-{worker.queue_id}-0"
        assert await exit_code(worker) == 0, worker.stderr()
        await log.wait_for(lambda: "finished" in log.events(producer))

    assert log.events(producer)[0] == "started"
    assert log.events(producer)[-1] == "finished"
    assert {key for key, _ in log.records} == {worker.queue_id.encode()}
    assert log.records[-1][1]["records_written"] == 500
    assert worker.exit_record()["outcome"] == "finished"


async def test_every_step_of_the_queue_hears_a_stop(running_kafka_broker, spawn_worker):
    events, control = topics()
    await create_topics(running_kafka_broker, (events, 1), (control, 3))
    env = kafka_env(running_kafka_broker, events, control)
    queue_id, other_queue = str(uuid.uuid4()), str(uuid.uuid4())
    async with EventLog(running_kafka_broker, events) as log:
        steps = [
            spawn_worker("loader-producer", "--tick", "0.2", queue_id=queue_id,
                         env={**env, "TYPE": "ws_candles_1m", "TELEMETRY_PRODUCER_ID": "step-0"}),
            spawn_worker("arango-connector", "--tick", "0.2", queue_id=queue_id,
                         env={**env, "TYPE": "ws_candles_1m", "TELEMETRY_PRODUCER_ID": "step-1"}),
        ]  # fmt: skip
        bystander = spawn_worker(
            "loader-producer", "--tick", "0.2", queue_id=other_queue,
            env={**env, "TYPE": "ws_trades", "TELEMETRY_PRODUCER_ID": "other-0"},
        )  # fmt: skip
        for producer in ("step-0", "step-1", "other-0"):
            await log.wait_for(lambda p=producer: "loading" in log.events(p))

        async with AIOKafkaProducer(**running_kafka_broker.client_kwargs(sasl=False)) as client:
            await client.send_and_wait(control, orjson.dumps({
                "queue_id": queue_id, "command": "stop", "payload": {},
                "command_id": str(uuid.uuid4()), "sent_at": "2024-06-01T00:00:00+00:00",
            }), key=queue_id.encode())  # fmt: skip
            # Telemetry in the control topic's shape is not a command.
            await client.send_and_wait(control, orjson.dumps({
                "type": "telemetry", "queue_id": other_queue, "status": "loading",
            }), key=other_queue.encode())  # fmt: skip
        asked = time.monotonic()

        for step in steps:
            assert await exit_code(step, 10) == 0, step.stderr()
        assert time.monotonic() - asked < 5.0
        await log.wait_for(lambda: "interrupted" in log.events("step-1"))
        assert log.events("step-0")[-1] == "interrupted"
        assert log.events("step-1")[-1] == "interrupted"

        # The bystander carries on: a report of its own after both interruptions on the
        # (one-partition, ordered) events topic, and no interruption before it.
        mark = len(log.records)
        await log.wait_for(
            lambda: "loading" in log.since(mark, "other-0"),
            what="a report of the bystander after the stopped queue's interruptions",
        )
        assert bystander.process.poll() is None
        assert "interrupted" not in log.events("other-0")
        bystander.signal(signal.SIGTERM)
        assert await exit_code(bystander, 10) == 0, bystander.stderr()
        await log.wait_for(lambda: "interrupted" in log.events("other-0"))


async def test_sasl_ssl_with_scram(running_kafka_broker, spawn_worker):
    events, control = topics()
    await create_topics(running_kafka_broker, (events, 1), (control, 1))
    async with EventLog(running_kafka_broker, events) as log:
        worker = spawn_worker(
            "gnn-trainer", "--duration", "0.4", "--tick", "0.2",
            env={**kafka_env(running_kafka_broker, events, control, sasl=True),
                 "TYPE": "gnn_train", "GRAPH_COLLECTION": "g", "MODEL_OUTPUT": "m"},
        )  # fmt: skip
        producer = f"gnn-trainer-{worker.queue_id}-0"
        assert await exit_code(worker) == 0, worker.stderr()
        await log.wait_for(lambda: "finished" in log.events(producer))
    assert log.events(producer)[0] == "started"
    assert running_kafka_broker.password not in worker.stderr()


async def test_status_survives_a_broker_outage_at_start(running_kafka_broker, spawn_worker):
    broker = running_kafka_broker
    events, control = topics()
    await create_topics(broker, (events, 1), (control, 1))
    await asyncio.to_thread(broker.stop)
    try:
        worker = spawn_worker(
            "loader-producer", "--duration", "0.4", "--tick", "0.2",
            env=kafka_env(broker, events, control),
        )  # fmt: skip
        # It meets the outage (and the broker's restart below lasts seconds more).
        await wait_until_async(
            lambda: "telemetry not delivered, retrying" in worker.stderr(),
            TIMEOUT,
            what="the worker to log that its status was not delivered",
            detail=lambda: f"stderr: {worker.stderr()}",
        )
        assert worker.process.poll() is None, worker.stderr()
    finally:
        await asyncio.to_thread(broker.start)

    producer = f"loader-producer-{worker.queue_id}-0"
    assert await exit_code(worker, 150) == 0, worker.stderr()
    async with EventLog(broker, events) as log:
        await log.wait_for(lambda: "finished" in log.events(producer))
    assert log.events(producer)[0] == "started"
    assert log.events(producer).count("started") == 1
