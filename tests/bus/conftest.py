"""Bus tests; the Kafka fixtures come from tests/conftest.py."""

import sys
from pathlib import Path

from tests.support.kafka_broker import KafkaBroker


def platform_worker_env(tmp_path: Path, broker: KafkaBroker, **extra: str) -> dict[str, str]:
    """A service on the Kafka bus whose local jobs are the platform worker, on topics and a
    consumer group of this test's own (so replicas given the same env share them)."""
    from tests.bus.test_service_on_kafka import WORKER

    return {
        "BUS_BACKEND": "kafka",
        "KAFKA_GROUP_ID": f"qm-{tmp_path.name}",
        "QUEUE_EVENTS_TOPIC": f"events-{tmp_path.name}",
        "QUEUE_CONTROL_TOPIC": f"control-{tmp_path.name}",
        "QUEUE_UPDATES_TOPIC": f"updates-{tmp_path.name}",
        "LOCAL_WORKER_COMMAND": f"{sys.executable} {WORKER}",
        **broker.client_env(sasl=False),
        **extra,
    }
