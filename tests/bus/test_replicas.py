"""docs/operations.md scale-out: two replicas on one store and one broker (docs/worker-protocol.md
delivery)."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from tests.bus.conftest import platform_worker_env
from tests.e2e.test_live_updates import collect
from tests.support.kafka_broker import KafkaBroker
from tests.support.service import Service, wait_for


def _count(metrics: str, status: str) -> float:
    pattern = (
        rf'queue_manager_telemetry_events_total\{{source="queue-events",status="{status}"\}} (\S+)'
    )
    match = re.search(pattern, metrics)
    return float(match.group(1)) if match else 0.0


def test_two_replicas_apply_each_event_once_and_both_stream_every_update(
    tmp_path: Path, running_kafka_broker: KafkaBroker, single: dict[str, Any]
) -> None:
    env = platform_worker_env(tmp_path, running_kafka_broker, LOCAL_WORKER_ARGS="20")
    shared = tmp_path / "shared"
    first = Service(shared, env=env).start()
    second = Service(shared, env=env).start()
    stop = threading.Event()
    seen: dict[int, list[dict[str, Any]]] = {first.port: [], second.port: []}
    readers = [
        threading.Thread(
            target=collect, args=(s.url.replace("http", "ws") + "/ws/topic", seen[s.port], stop)
        )
        for s in (first, second)
    ]
    for reader in readers:
        reader.start()
    try:
        queue_ids = [first.start_queue({**single, "type": "api_trades"}) for _ in range(3)]
        for queue_id in queue_ids:
            queue = second.wait_status(queue_id, {"finished", "error"}, 60)
            assert queue["status"] == "finished", queue
            assert queue["records_written"] == 200

        # The updates travel through Kafka to the other replica: wait for each socket's last.
        def all_final() -> bool | None:
            return (
                all(
                    any(
                        u["queue_id"] == q
                        and u["event"] == "queue.updated"
                        and u["status"] == "finished"
                        for u in list(updates)
                    )
                    for updates in seen.values()
                    for q in queue_ids
                )
                or None
            )

        wait_for(all_final, 30)
        stop.set()
        for reader in readers:
            reader.join()
        started = sum(_count(s.get("/metrics").text, "started") for s in (first, second))
        finished = sum(_count(s.get("/metrics").text, "finished") for s in (first, second))
        assert started == finished == 3  # each event applied by exactly one replica
        # Whichever replica applied an event, the clients of both saw every change.
        for updates in seen.values():
            for queue_id in queue_ids:
                final = [
                    u
                    for u in updates
                    if u["queue_id"] == queue_id and u["event"] == "queue.updated"
                ]
                assert final and final[-1]["status"] == "finished"
    finally:
        stop.set()
        for svc in (first, second):
            svc.stop()
        first.kill_workers()
