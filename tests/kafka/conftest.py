"""Tests against the real Kafka broker; the fixtures live in tests/support/kafka_fixtures.py."""

from tests.support.kafka_fixtures import (  # noqa: F401  (fixtures are found by name)
    kafka_broker,
    kafka_topic,
    running_kafka_broker,
)
