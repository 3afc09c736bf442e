# Real single-node Kafka broker (KRaft) for the test suite: tests/support/kafka_broker.py.
# Included by the main Makefile, which defines PY (.venv/bin/python).
PY ?= .venv/bin/python

.PHONY: kafka-deps test-kafka

## Fetch the broker's jars from Maven Central into .cache/kafka/<version> (once; needs mvn and
## Java 17+) and build its JVM class-data archive. Later calls return at once.
kafka-deps:
	$(PY) -m tests.support.kafka_broker deps

## Prove the test broker works: PLAINTEXT and SASL_SSL/SCRAM round trips, outage and recovery.
test-kafka: kafka-deps
	$(PY) -m pytest tests/kafka -q
