"""Production transport: telemetry to QUEUE_EVENTS_TOPIC, commands from QUEUE_CONTROL_TOPIC."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    AuthenticationFailedError,
    KafkaError,
    MessageSizeTooLargeError,
    TopicAuthorizationFailedError,
)

from queue_manager.job_contract import CommandField
from queue_manager.kafka_security import client_security
from queue_manager.worker.env import WorkerEnv
from queue_manager.worker.transport import DeliveryError, OnCommand

log = structlog.get_logger("queue_manager.worker")

_PERMANENT = (MessageSizeTooLargeError, TopicAuthorizationFailedError, AuthenticationFailedError)
_MAX_BACKOFF = 2.0


def kafka_security(env: WorkerEnv) -> dict[str, Any]:
    """docs/operations.md, exactly as the service connects (one implementation for both)."""
    password = env.kafka_password.get_secret_value() if env.kafka_password else None
    return client_security(env.kafka_user, password, env.ca_path)


class KafkaTransport:
    name = "kafka"

    def __init__(self, env: WorkerEnv, *, request_timeout_ms: int = 15000) -> None:
        if env.kafka_bootstrap_servers is None:
            raise ValueError("KafkaTransport needs KAFKA_BOOTSTRAP_SERVERS")
        self._env = env
        self._servers = env.kafka_bootstrap_servers
        self._request_timeout_ms = request_timeout_ms
        self._producer: AIOKafkaProducer | None = None
        self._producer_lock = asyncio.Lock()
        self._positions: dict[TopicPartition, int] = {}
        self.ready = asyncio.Event()

    async def send(self, body: Mapping[str, Any]) -> None:
        producer = await self._started_producer()
        try:
            await producer.send_and_wait(
                self._env.queue_events_topic,
                value=orjson.dumps(body),
                key=self._env.queue_id.encode(),
            )
        except KafkaError as exc:
            raise DeliveryError(_describe(exc), retryable=not isinstance(exc, _PERMANENT)) from None

    async def _started_producer(self) -> AIOKafkaProducer:
        async with self._producer_lock:
            if self._producer is not None:
                return self._producer
            producer = AIOKafkaProducer(
                bootstrap_servers=self._servers,
                client_id=f"qm-worker-{self._env.telemetry_producer_id}"[:200],
                acks="all",
                enable_idempotence=True,
                request_timeout_ms=self._request_timeout_ms,
                **kafka_security(self._env),
            )
            try:
                await producer.start()
            except KafkaError as exc:
                await _quietly(producer.stop())
                raise DeliveryError(_describe(exc), retryable=True) from None
            self._producer = producer
            return producer

    async def run_commands(self, on_command: OnCommand) -> None:
        backoff = 0.25
        while True:
            consumer: AIOKafkaConsumer | None = None
            try:
                partitions = await self._control_partitions()
                # No group: every step of the queue must hear the stop, not one group member.
                consumer = AIOKafkaConsumer(
                    bootstrap_servers=self._servers,
                    client_id=f"qm-worker-{self._env.telemetry_producer_id}-control"[:200],
                    group_id=None,
                    enable_auto_commit=False,
                    auto_offset_reset="latest",
                    request_timeout_ms=self._request_timeout_ms,
                    **kafka_security(self._env),
                )
                await consumer.start()
                await self._attach(consumer, partitions)
                backoff = 0.25
                while True:
                    batches = await consumer.getmany(timeout_ms=500)
                    for partition, records in batches.items():
                        for record in records:
                            self._positions[partition] = record.offset + 1
                            command = self._command_of(record.value)
                            if command is not None:
                                on_command(command)
            except (KafkaError, DeliveryError) as exc:
                log.warning("command consumer failed, retrying", error=_describe(exc))
            finally:
                if consumer is not None:
                    await _quietly(consumer.stop())
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)

    async def _control_partitions(self) -> list[TopicPartition]:
        # The producer waits for the topic's metadata; a bare consumer would only see its cache.
        producer = await self._started_producer()
        topic = self._env.queue_control_topic
        numbers: set[int] = await producer.partitions_for(topic)
        return [TopicPartition(topic, number) for number in sorted(numbers)]

    async def _attach(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        consumer.assign(partitions)
        fresh = [tp for tp in partitions if tp not in self._positions]
        if fresh:
            await consumer.seek_to_end(*fresh)
        for tp in partitions:
            if tp in self._positions:
                # A reconnect resumes where the last consumer stopped instead of skipping ahead.
                consumer.seek(tp, self._positions[tp])
            else:
                # seek_to_end is lazy; resolving it now fixes the point from which stops are heard.
                self._positions[tp] = await consumer.position(tp)
        self.ready.set()

    def _command_of(self, raw: bytes | None) -> dict[str, Any] | None:
        if raw is None:
            return None
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        if (
            not isinstance(message, dict)
            or message.get(CommandField.QUEUE_ID) != self._env.queue_id
            or not isinstance(message.get(CommandField.COMMAND), str)
        ):
            return None
        return message

    async def close(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await _quietly(producer.stop())


async def _quietly(closing: Any) -> None:
    try:
        await closing
    except Exception as exc:
        log.debug("kafka client close failed", error=_describe(exc))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
