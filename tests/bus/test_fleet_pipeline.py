"""The platform's own workers, as they are, run by the service (docs/pipelines.md,
docs/worker-protocol.md): a loader that never exits, a connector that never ends and starts at
`latest`, unkeyed reports over three partitions, `error` with `finished: false`. The real broker
over SASL_SSL/SCRAM; the workers are tests/support/fleet_*.py, not our SDK."""

from __future__ import annotations

import asyncio
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.support.kafka_broker import KafkaBroker
from tests.support.service import Service, pid_alive, wait_for

SUPPORT = Path(__file__).parent.parent / "support"
RECORDS = 240
PARTITIONS = 3


def fleet_env(tmp_path: Path, broker: KafkaBroker, **extra: str) -> dict[str, str]:
    """A service on its own three-partition topics whose loaders and connectors are the
    fleet's; graph-builder and gnn-trainer stay the reference worker."""
    return {
        "BUS_BACKEND": "kafka",
        "KAFKA_GROUP_ID": f"qm-{tmp_path.name}",
        "QUEUE_EVENTS_TOPIC": f"events-{tmp_path.name}",
        "QUEUE_CONTROL_TOPIC": f"control-{tmp_path.name}",
        "QUEUE_UPDATES_TOPIC": f"updates-{tmp_path.name}",
        "LOCAL_LOADER_COMMAND": f"{sys.executable} {SUPPORT / 'fleet_loader.py'}",
        "LOCAL_CONSUMER_COMMAND": f"{sys.executable} {SUPPORT / 'fleet_connector.py'}",
        "LOCAL_WORKER_ARGS": "--duration 1",
        "DATA_TOPIC_PARTITIONS": str(PARTITIONS),
        "TELEMETRY_REORDER_SECONDS": "1",
        "CONNECTOR_DRAIN_QUIET_SECONDS": "1",
        "STEP_WATCH_SECONDS": "0.5",
        "FINISHED_JOB_GRACE_SECONDS": "1",
        "STOP_GRACE_SECONDS": "3",
        "FLEET_RECORDS": str(RECORDS),
        "FLEET_BATCH": "20",
        "FLEET_PAUSE_MS": "5",
        "FLEET_AUTO_COMMIT_MS": "300",
        "FLEET_SINK_DIR": str(tmp_path / "arango"),
        **broker.client_env(sasl=True),
        **extra,
    }


def create_topics(broker: KafkaBroker, *names: str) -> None:
    async def create() -> None:
        admin = AIOKafkaAdminClient(**broker.client_kwargs(sasl=True))
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(name, num_partitions=PARTITIONS, replication_factor=1) for name in names]
            )
        finally:
            await admin.close()

    asyncio.run(create())


def start_service(tmp_path: Path, broker: KafkaBroker, **extra: str) -> Service:
    env = fleet_env(tmp_path, broker, **extra)
    create_topics(broker, env["QUEUE_EVENTS_TOPIC"], env["QUEUE_CONTROL_TOPIC"])
    (tmp_path / "arango").mkdir()
    return Service(tmp_path / "svc", env=env).start()


def reports_by_partition(broker: KafkaBroker, topic: str) -> dict[str, set[int | None]]:
    """The partitions each worker's reports landed on, and None among them if one was keyed
    (the reference worker's reports, relayed by the service, are)."""

    async def read() -> dict[str, set[int | None]]:
        consumer = AIOKafkaConsumer(**broker.client_kwargs(sasl=True), enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            seen: dict[str, set[int | None]] = defaultdict(set)
            async def behind() -> bool:
                return any([await consumer.position(tp) < ends[tp] for tp in partitions])

            while await behind():
                for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                    for record in records:
                        producer = str(orjson.loads(record.value or b"{}").get("producer"))
                        seen[producer].add(tp.partition if record.key is None else None)
            return seen
        finally:
            await consumer.stop()

    return asyncio.run(read())


def stored_records(tmp_path: Path, collection: str) -> int:
    return len((tmp_path / "arango" / f"{collection}.jsonl").read_text().splitlines())


def workers_of(queue_id: str) -> list[int]:
    """Live processes of the queue's jobs (their environment names the queue)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"QUEUE_ID={queue_id}".encode() in environ.read_bytes().split(b"\0"):
                pid = int(environ.parent.name)
                if pid_alive(pid):
                    found.append(pid)
        except OSError:
            continue
    return found


def history(svc: Service, queue_id: str) -> list[dict[str, Any]]:
    answer = svc.get(f"/queues/{queue_id}/events?limit=1000")
    events: list[dict[str, Any]] = answer.json()["data"]
    return events


@pytest.fixture
def clean_service(tmp_path: Path, running_kafka_broker: KafkaBroker) -> Iterator[Service]:
    svc = start_service(tmp_path, running_kafka_broker)
    yield svc
    svc.stop()
    svc.kill_workers()


def test_the_historical_pipeline_finishes_with_the_fleets_loader_and_connector(
    clean_service: Service,
    running_kafka_broker: KafkaBroker,
    tmp_path: Path,
    historical: dict[str, Any],
) -> None:
    svc = clean_service
    queue_id = svc.start_queue(historical)
    queue = svc.wait_status(queue_id, {"finished", "error", "stopped"}, 150)
    assert queue["status"] == "finished", queue
    steps = queue["steps"]
    # Each connector stored what its loader wrote, though it starts at `latest`.
    for loader, connector in ((0, 2), (1, 3)):
        assert steps[loader]["records_written"] == RECORDS
        assert steps[connector]["records_written"] == RECORDS
        assert stored_records(tmp_path, steps[connector]["collection_name"]) == RECORDS
    # The connectors never end by themselves: they drained, and only then did the rest start.
    drained = {
        event["step"]
        for event in history(svc, queue_id)
        if event["kind"] == "step.status"
        and event["to"] == "finished"
        and (event["message"] or "").startswith("drained: ")
    }
    assert drained == {2, 3}
    assert steps[4]["started_at"] >= max(steps[2]["finished_at"], steps[3]["finished_at"])
    assert steps[5]["started_at"] >= steps[4]["finished_at"]
    # The loaders served on after `finished`: their processes were ended, the steps kept.
    wait_for(lambda: not workers_of(queue_id), 30)
    assert [s["status"] for s in svc.queue(queue_id)["steps"]] == ["finished"] * 6
    # Their reports were unkeyed and spread over the partitions of queue-events.
    spread = reports_by_partition(running_kafka_broker, svc.env["QUEUE_EVENTS_TOPIC"])
    fleet = [spread[steps[i]["telemetry_id"]] for i in range(4)]
    assert all(None not in partitions for partitions in fleet), spread
    assert any(len(partitions) > 1 for partitions in fleet), spread
    metrics = svc.get("/metrics").text
    assert "queue_manager_connectors_drained_total 2.0" in metrics
    assert 'queue_manager_finished_jobs_ended_total{target="loader-producer"} 2.0' in metrics
    assert "KAFKA_PASSWORD" not in svc.log_path.read_text()


@pytest.fixture(scope="module")
def bad_record_service(
    tmp_path_factory: pytest.TempPathFactory, kafka_broker: KafkaBroker
) -> Iterator[tuple[Service, Path]]:
    """Every loader writes one record the connector cannot store (its 8th)."""
    kafka_broker.start()
    tmp_path = tmp_path_factory.mktemp("fleet-bad-record")
    svc = start_service(tmp_path, kafka_broker, FLEET_BAD_RECORDS="7")
    yield svc, tmp_path
    svc.stop()
    svc.kill_workers()


def test_the_single_form_api_runs_the_fleets_loader_to_finished(
    bad_record_service: tuple[Service, Path], single: dict[str, Any]
) -> None:
    svc, _ = bad_record_service
    assert single["type"] == "api"
    queue_id = svc.start_queue(single)
    queue = svc.wait_status(queue_id, {"finished", "error"}, 60)
    assert queue["status"] == "finished", queue
    assert queue["type"] == "api"
    step = queue["steps"][0]
    assert step["type"] == "api_candles_1m"
    assert step["records_written"] == RECORDS
    wait_for(lambda: not workers_of(queue_id), 30)
    assert svc.queue(queue_id)["steps"][0]["status"] == "finished"


def test_a_connector_warning_for_one_bad_record_does_not_stop_the_pipeline(
    bad_record_service: tuple[Service, Path],
) -> None:
    svc, tmp_path = bad_record_service
    body = {
        "symbol": "ETHUSDT",
        "time_range": "2024-06-01:2024-06-30",
        "requests": [
            {"target": "loader-producer", "type": "api_candles_5m", "interval": "5m"},
            {"target": "arango-connector", "type": "api_candles_5m"},
            {
                "target": "graph-builder",
                "type": "gnn_graph",
                "collection_inputs": ["eth_candles_5m_2024_06"],
                "collection_output": "eth_graph_2024_06",
            },
        ],
    }
    queue_id = svc.start_queue(body)
    queue = svc.wait_status(queue_id, {"finished", "error", "stopped"}, 120)
    assert queue["status"] == "finished", queue
    connector = queue["steps"][1]
    assert connector["records_written"] == RECORDS - 1
    assert stored_records(tmp_path, "eth_candles_5m_2024_06") == RECORDS - 1
    assert connector["warnings"] == 1
    assert connector["last_warning"].startswith("cannot store record at offset")
    assert connector["error_message"] is None
    warnings = [e for e in history(svc, queue_id) if e["kind"] == "step.warning"]
    assert [(e["step"], e["message"]) for e in warnings] == [(1, connector["last_warning"])]
    assert (
        'queue_manager_step_warnings_total{target="arango-connector"}' in svc.get("/metrics").text
    )
