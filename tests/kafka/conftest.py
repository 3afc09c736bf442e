"""Tests against the real Kafka broker; fixtures: tests/support/kafka_fixtures.py (tests/conftest.py)."""
