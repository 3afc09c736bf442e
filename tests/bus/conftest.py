"""Bus tests; the Kafka fixtures come from tests/conftest.py."""
