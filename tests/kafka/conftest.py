"""Tests against the real Kafka broker; fixtures come from tests/conftest.py."""
