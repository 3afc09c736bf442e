"""The service with BUS_BACKEND=kafka against the real broker (docs/operations.md,
docs/worker-protocol.md)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.kafka_broker import KafkaBroker
from tests.support.service import Service, wait_for

WORKER = str(Path(__file__).parent.parent / "support" / "platform_worker.py")


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
        time.sleep(1)
        assert svc.post(f"/queues/stop?queue_id={running}").status_code == 200
        queue = svc.wait_status(running, {"stopped"}, 10)
        assert queue["steps"][0]["status"] == "stopped"
    finally:
        svc.stop()
        svc.kill_workers()


def test_control_topic_telemetry_shape_is_applied(
    kafka_service: Service, running_kafka_broker: KafkaBroker, single: dict[str, Any]
) -> None:
    import asyncio

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
        # The outage lasts 30 s; the service stays live and answers quickly meanwhile.
        while time.monotonic() - stopped_at < 30:
            assert kafka_service.get("/health/live").status_code == 200
            assert kafka_service.get("/health/ready").status_code == 503
            time.sleep(2)
    finally:
        running_kafka_broker.start()
    wait_for(lambda: kafka_service.get("/health/ready").status_code == 200, 60)
    queue_id = kafka_service.start_queue(single)
    assert kafka_service.wait_status(queue_id, {"finished"}, 60)["status"] == "finished"
    # The refused stop changed nothing; stopping now works.
    assert kafka_service.queue(streaming)["status"] == "loading"
    assert kafka_service.post(f"/queues/stop?queue_id={streaming}").status_code == 200
    assert kafka_service.wait_status(streaming, {"stopped"}, 15)["status"] == "stopped"
