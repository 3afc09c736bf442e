"""pytest fixtures for tests that need the real Kafka broker (``tests/support/kafka_broker.py``).

Bring them into a directory's conftest.py with
``from tests.support.kafka_fixtures import kafka_broker, kafka_topic, running_kafka_broker``.
One broker serves the whole session; it is stopped when the session ends, and the JVM dies
with the Python process even if pytest itself is killed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.kafka_broker import KafkaBroker, KafkaBrokerError, start_broker


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """The session's single-node broker. Tests may ``stop()``/``kill()`` and ``start()`` it
    to simulate an outage; take ``running_kafka_broker`` to be sure it is up."""
    try:
        broker = start_broker(tmp_path_factory.mktemp("kafka"))
    except KafkaBrokerError as exc:
        pytest.fail(f"could not start the test Kafka broker: {exc}", pytrace=False)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def running_kafka_broker(kafka_broker: KafkaBroker) -> KafkaBroker:
    """The session's broker, restarted first if an earlier test left it stopped."""
    kafka_broker.start()
    return kafka_broker


@pytest.fixture
def kafka_topic() -> str:
    """A topic name no other test uses (the broker creates topics on first use)."""
    return f"test-{uuid.uuid4().hex[:12]}"
