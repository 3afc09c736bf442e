"""The test broker is a real Kafka: both client listeners carry data, SCRAM is enforced, and
the broker survives an outage (stop/kill, then start) with its data and ports."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from aiokafka.helpers import create_ssl_context
from tests.support.kafka_broker import KafkaBroker

pytestmark = pytest.mark.kafka

RECEIVE_TIMEOUT_S = 30.0


def sasl_ssl_kwargs(broker: KafkaBroker, *, password: str | None = None) -> dict[str, Any]:
    """The client settings queue-manager uses with KAFKA_USER set (docs/operations.md), spelled
    out."""
    return {
        "bootstrap_servers": broker.sasl_ssl_bootstrap,
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": broker.username,
        "sasl_plain_password": broker.password if password is None else password,
        "ssl_context": create_ssl_context(cafile=broker.ca_path),
    }


@asynccontextmanager
async def producer(**kwargs: Any) -> AsyncIterator[AIOKafkaProducer]:
    client = AIOKafkaProducer(acks="all", request_timeout_ms=10_000, **kwargs)
    await client.start()
    try:
        yield client
    finally:
        await client.stop()


async def consume(topic: str, count: int, **kwargs: Any) -> list[bytes]:
    # A fresh group each time, so every call reads the topic from the beginning.
    consumer = AIOKafkaConsumer(
        topic, group_id=f"reader-{uuid.uuid4().hex}", auto_offset_reset="earliest", **kwargs
    )
    await consumer.start()
    try:
        values: list[bytes] = []
        while len(values) < count:
            message = await asyncio.wait_for(consumer.getone(), RECEIVE_TIMEOUT_S)
            assert message.value is not None
            values.append(message.value)
        return values
    finally:
        await consumer.stop()


def port_accepts(bootstrap: str) -> bool:
    host, port = bootstrap.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


async def test_plaintext_produce_and_consume(
    running_kafka_broker: KafkaBroker, kafka_topic: str
) -> None:
    bootstrap = {"bootstrap_servers": running_kafka_broker.plaintext_bootstrap}
    async with producer(**bootstrap) as client:
        await client.send_and_wait(kafka_topic, b"over plaintext", key=b"queue-1")

    assert await consume(kafka_topic, 1, **bootstrap) == [b"over plaintext"]


async def test_sasl_ssl_scram_produce_and_consume(
    running_kafka_broker: KafkaBroker, kafka_topic: str
) -> None:
    async with producer(**sasl_ssl_kwargs(running_kafka_broker)) as client:
        await client.send_and_wait(kafka_topic, b"over sasl_ssl", key=b"queue-1")

    assert await consume(kafka_topic, 1, **sasl_ssl_kwargs(running_kafka_broker)) == [
        b"over sasl_ssl"
    ]
    # Same broker behind both listeners: the message is visible over PLAINTEXT too.
    assert await consume(
        kafka_topic, 1, bootstrap_servers=running_kafka_broker.plaintext_bootstrap
    ) == [b"over sasl_ssl"]


async def test_client_kwargs_and_env_describe_the_sasl_ssl_listener(
    running_kafka_broker: KafkaBroker, kafka_topic: str
) -> None:
    env = running_kafka_broker.client_env(sasl=True)
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == running_kafka_broker.sasl_ssl_bootstrap
    assert set(env) == {"KAFKA_BOOTSTRAP_SERVERS", "KAFKA_USER", "KAFKA_PASSWORD", "CA_PATH"}
    assert running_kafka_broker.password not in repr(running_kafka_broker)

    async with producer(**running_kafka_broker.client_kwargs(sasl=True)) as client:
        await client.send_and_wait(kafka_topic, b"via helper")


async def test_wrong_password_is_refused(
    running_kafka_broker: KafkaBroker, caplog: pytest.LogCaptureFixture
) -> None:
    client = AIOKafkaProducer(
        **sasl_ssl_kwargs(running_kafka_broker, password="not-the-password"),
        request_timeout_ms=5_000,
    )
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        await client.start()
    await client.stop()
    # Refused by SCRAM, not merely unreachable.
    assert "SaslAuthenticationFailed" in caplog.text


@pytest.mark.parametrize("outage", ["stop", "kill"])
async def test_broker_outage_and_recovery(
    running_kafka_broker: KafkaBroker, kafka_topic: str, outage: str
) -> None:
    broker = running_kafka_broker
    bootstrap = {"bootstrap_servers": broker.plaintext_bootstrap}
    async with producer(**bootstrap) as client:
        await client.send_and_wait(kafka_topic, b"before the outage")
        try:
            await asyncio.to_thread(getattr(broker, outage))
            assert not broker.is_running
            assert not port_accepts(broker.plaintext_bootstrap)
            assert not port_accepts(broker.sasl_ssl_bootstrap)
        finally:
            await asyncio.to_thread(broker.start)
        assert broker.is_running

        # The producer opened before the outage reconnects by itself.
        await asyncio.wait_for(
            client.send_and_wait(kafka_topic, b"after the outage"), RECEIVE_TIMEOUT_S
        )

    # Same data directory: what was written before the outage is still there.
    assert await consume(kafka_topic, 2, **bootstrap) == [b"before the outage", b"after the outage"]
    async with producer(**sasl_ssl_kwargs(broker)) as client:
        await client.send_and_wait(kafka_topic, b"sasl after the outage")
