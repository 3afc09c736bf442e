"""The service with BUS_BACKEND=kafka against the real broker (docs/operations.md,
docs/worker-protocol.md)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from tests.support.kafka_broker import KafkaBroker
from tests.support.service import Service, wait_for
from tests.support.waiting import wait_until

WORKER = str(Path(__file__).parent.parent / "support" / "platform_worker.py")
#: QUEUE_CONTROL_TOPIC's default, the topic a stop is sent on
CONTROL_TOPIC = "queue-control"
OUTAGE_SECONDS = 30


def _reads_commands(broker: KafkaBroker, queue_id: str) -> bool:
    """Whether the platform worker of `queue_id` (consumer group `worker-<queue id>`) has a
    position on every partition of the control topic: its group committed one (aiokafka commits
    the positions it has every 5 s), so a command sent now is read."""

    async def check() -> bool:
        admin = AIOKafkaAdminClient(**broker.client_kwargs(sasl=False))
        await admin.start()
        try:
            committed = await admin.list_consumer_group_offsets(f"worker-{queue_id}")
            (topic,) = await admin.describe_topics([CONTROL_TOPIC])
        finally:
            await admin.close()
        partitions = {p["partition"] for p in topic["partitions"]}
        positioned = {tp.partition for tp, at in committed.items() if tp.topic == CONTROL_TOPIC}
        return (
            bool(partitions)
            and positioned == partitions
            and all(at.offset >= 0 for at in committed.values())
        )

    return asyncio.run(check())


@pytest.fixture
def kafka_service(tmp_path: Path, running_kafka_broker: KafkaBroker) -> Iterator[Service]:
    env = {
        "BUS_BACKEND": "kafka",
        "KAFKA_GROUP_ID": f"qm-{tmp_path.name}",
        "STOP_GRACE_SECONDS": "3",
        **running_kafka_broker.client_env(sasl=True),
    }
    svc = Service(tmp_path / "svc", env=env).start()
    yield svc
    svc.stop()
    svc.kill_workers()


def test_historical_example_over_sasl_ssl_scram(
    kafka_service: Service, historical: dict[str, Any]
) -> None:
    ready = kafka_service.get("/health/ready").json()
    assert ready["data"]["bus"] == {"backend": "kafka", "ok": True}
    queue_id = kafka_service.start_queue(historical)
    queue = kafka_service.wait_status(queue_id, {"finished", "error"}, 60)
    assert queue["status"] == "finished", queue
    assert all(s["records_written"] > 0 for s in queue["steps"])
    assert "KAFKA_PASSWORD" not in kafka_service.log_path.read_text()


def test_platform_worker_drives_a_queue_and_stops_on_command(
    tmp_path: Path, running_kafka_broker: KafkaBroker, single: dict[str, Any]
) -> None:
    env = {
        "BUS_BACKEND": "kafka",
        "KAFKA_GROUP_ID": f"qm-{tmp_path.name}",
        "LOCAL_WORKER_COMMAND": f"{sys.executable} {WORKER}",
        **running_kafka_broker.client_env(sasl=False),
    }
    svc = Service(tmp_path / "svc", env={**env, "LOCAL_WORKER_ARGS": "5"}).start()
    try:
        finished = svc.start_queue(single)
        queue = svc.wait_status(finished, {"finished", "error"}, 30)
        assert queue["status"] == "finished" and queue["records_written"] == 50
        svc.stop()
        svc.env["LOCAL_WORKER_ARGS"] = "1000"
        svc.start()
        running = svc.start_queue(single)
        wait_for(lambda: svc.queue(running)["status"] == "loading", 30)
        # The worker reads the control topic from its latest offset: a stop sent before its
        # consumer has a position there would pass it by.
        wait_until(
            lambda: _reads_commands(running_kafka_broker, running),
            30,
            what="the worker's consumer to have a position on the control topic",
            every=0.2,
            ignore=(KafkaError,),  # its group is still being formed
        )
        assert svc.post(f"/queues/stop?queue_id={running}").status_code == 200
        queue = svc.wait_status(running, {"stopped"}, 10)
        assert queue["steps"][0]["status"] == "stopped"
    finally:
        svc.stop()
        svc.kill_workers()


def test_control_topic_telemetry_shape_is_applied(
    kafka_service: Service, running_kafka_broker: KafkaBroker, single: dict[str, Any]
) -> None:
    import orjson
    from aiokafka import AIOKafkaProducer

    queue_id = kafka_service.start_queue(single)

    async def send() -> None:
        producer = AIOKafkaProducer(**running_kafka_broker.client_kwargs(sasl=True))
        await producer.start()
        try:
            body = {
                "type": "telemetry",
                "queue_id": queue_id,
                "status": "loading",
                "records_written": 10**9,
                "finished_at": None,
                "error_message": None,
            }
            await producer.send_and_wait("queue-control", orjson.dumps(body), key=queue_id.encode())
        finally:
            await producer.stop()

    asyncio.run(send())
    wait_for(lambda: kafka_service.queue(queue_id)["records_written"] == 10**9, 20)


def test_broker_outage_makes_ready_503_and_recovers(
    kafka_service: Service, running_kafka_broker: KafkaBroker, single: dict[str, Any]
) -> None:
    streaming = kafka_service.start_queue({**single, "type": "ws_trades"})
    wait_for(lambda: kafka_service.queue(streaming)["status"] == "loading", 30)
    stopped_at = time.monotonic()
    running_kafka_broker.stop()
    try:

        def down() -> bool:
            answer = kafka_service.get("/health/ready")
            return answer.status_code == 503 and answer.json()["data"]["bus"]["ok"] is False

        wait_for(down, 20)
        assert kafka_service.get("/health/live").status_code == 200
        began = time.monotonic()
        answer = kafka_service.post("/queues/start", json=single)
        assert answer.status_code == 503 and answer.json()["status"] == "error"
        assert time.monotonic() - began < 8
        began = time.monotonic()
        answer = kafka_service.post(f"/queues/stop?queue_id={streaming}")
        assert answer.status_code == 503 and answer.json()["status"] == "error"
        assert time.monotonic() - began < 8
        # The outage lasts 30 s (the scenario); the service stays live and answers quickly
        # meanwhile, sampled every 2 s.

        def outage_over() -> bool:
            assert kafka_service.get("/health/live").status_code == 200
            assert kafka_service.get("/health/ready").status_code == 503
            return time.monotonic() - stopped_at >= OUTAGE_SECONDS

        wait_until(
            outage_over,
            OUTAGE_SECONDS + 10,
            every=2,
            what=f"{OUTAGE_SECONDS} s of outage, the service live and not ready throughout",
        )
    finally:
        running_kafka_broker.start()
    wait_for(lambda: kafka_service.get("/health/ready").status_code == 200, 60)
    queue_id = kafka_service.start_queue(single)
    assert kafka_service.wait_status(queue_id, {"finished"}, 60)["status"] == "finished"
    # The refused stop changed nothing; stopping now works.
    assert kafka_service.queue(streaming)["status"] == "loading"
    assert kafka_service.post(f"/queues/stop?queue_id={streaming}").status_code == 200
    assert kafka_service.wait_status(streaming, {"stopped"}, 15)["status"] == "stopped"
