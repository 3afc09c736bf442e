"""Production bus on Apache Kafka (docs/worker-protocol.md) with aiokafka.

Commands go to `queue-control` keyed by queue id (acks=all, idempotent producer). Telemetry is
consumed from `queue-events` and `queue-control` in one consumer group shared by every replica,
so each event is applied once; offsets are committed by the dispatcher only after its writes.
The broker may be down at start-up or later: the service stays live, calls fail fast with
`DependencyUnavailable`, and clients reconnect by themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from queue_manager.domain.errors import DependencyUnavailable
from queue_manager.domain.telemetry import Source
from queue_manager.ports import Command
from queue_manager.settings import Settings

log = structlog.get_logger(__name__)

SEND_TIMEOUT = 5.0
PING_TIMEOUT = 2.0
# Large fetches let the dispatcher fold many events of a queue into one write: a backlog of
# 100,000 events over 1,000 queues becomes one or two writes per queue.
MAX_BATCH = 100_000
FETCH_BYTES = 8 * 1024 * 1024
#: fetches held while the dispatcher writes
PREFETCH = 8
RECONNECT_SECONDS = 1.0


@dataclass
class _Batch:
    parts: Sequence[tuple[Source, Sequence[bytes]]]
    consumer: AIOKafkaConsumer
    offsets: dict[TopicPartition, int] = field(default_factory=dict)

    async def commit(self) -> None:
        if not self.offsets:
            return
        try:
            await self.consumer.commit(self.offsets)
        except KafkaError as exc:
            # Not committed means redelivered: harmless, telemetry is idempotent.
            raise DependencyUnavailable("bus", f"kafka commit failed: {exc}") from exc


class KafkaBus:
    name = "kafka"

    def __init__(
        self,
        bootstrap_servers: str,
        security: dict[str, Any],
        *,
        control_topic: str,
        events_topic: str,
        updates_topic: str,
        group_id: str,
    ) -> None:
        self._servers = bootstrap_servers
        self._security = security
        self._control = control_topic
        self._events = events_topic
        self._updates = updates_topic
        self._group = group_id
        self._producer: AIOKafkaProducer | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaBus:
        servers, security = settings.kafka_connection()
        return cls(
            servers,
            security,
            control_topic=settings.queue_control_topic,
            events_topic=settings.queue_events_topic,
            updates_topic=settings.queue_updates_topic,
            group_id=settings.kafka_group_id,
        )

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._stopped.clear()
        self._connecting = asyncio.create_task(self._connect_producer())

    async def _connect_producer(self) -> None:
        while not self._stopped.is_set():
            producer = AIOKafkaProducer(
                bootstrap_servers=self._servers,
                acks="all",
                enable_idempotence=True,
                request_timeout_ms=int(SEND_TIMEOUT * 1000),
                **self._security,
            )
            try:
                await producer.start()
            except (KafkaError, OSError) as exc:
                log.warning("kafka unreachable, retrying", reason=str(exc))
                with contextlib.suppress(Exception):
                    await producer.stop()
                await asyncio.sleep(RECONNECT_SECONDS)
                continue
            self._producer = producer
            log.info("kafka producer connected")
            return

    async def stop(self) -> None:
        self._stopped.set()
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
        if self._producer is not None:
            with contextlib.suppress(KafkaError, OSError):
                await self._producer.stop()
            self._producer = None

    async def ping(self) -> None:
        producer = self._require_producer()
        try:
            await asyncio.wait_for(producer.client.fetch_all_metadata(), PING_TIMEOUT)
        except (KafkaError, OSError, TimeoutError) as exc:
            raise DependencyUnavailable("bus", f"kafka unreachable: {exc!r}") from exc

    def _require_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise DependencyUnavailable("bus", "kafka not connected yet")
        return self._producer

    # -- port -----------------------------------------------------------------------------------

    async def send_command(self, command: Command) -> None:
        await self._send(self._control, command.queue_id, orjson.dumps(command.as_message()))

    async def send_telemetry(self, value: bytes) -> None:
        try:
            key = orjson.loads(value).get("queue_id")
        except (orjson.JSONDecodeError, AttributeError):
            key = None
        await self._send(self._events, key if isinstance(key, str) else None, value)

    async def _send(self, topic: str, key: str | None, value: bytes) -> None:
        producer = self._require_producer()
        try:
            await asyncio.wait_for(
                producer.send_and_wait(topic, value, key=key.encode() if key else None),
                SEND_TIMEOUT,
            )
        except (KafkaError, OSError, TimeoutError) as exc:
            raise DependencyUnavailable("bus", f"kafka send to {topic} failed: {exc!r}") from exc

    async def send_updates(self, value: bytes) -> None:
        producer = self._require_producer()
        try:
            # Not awaiting delivery: a live update is worth less than not delaying the writer.
            # One key, so one partition: every replica reads the updates in the order sent.
            await producer.send(self._updates, value, key=b"updates")
        except (KafkaError, OSError) as exc:
            raise DependencyUnavailable("bus", f"kafka send to {self._updates} failed") from exc

    async def updates(self) -> AsyncIterator[bytes]:
        # No group: every replica reads every partition, from the end (only new updates).
        consumer = await self._start_consumer(self._updates, group_id=None, reset="latest")
        async with contextlib.aclosing(self._poll(consumer)) as polls:
            async for records in polls:
                for batch in records.values():
                    for record in batch:
                        if record.value:
                            yield record.value

    async def batches(self) -> AsyncIterator[_Batch]:
        consumer = await self._start_consumer(
            self._events, self._control, group_id=self._group, reset="earliest"
        )
        # Fetching goes on while the dispatcher writes the previous batch, which then takes
        # every fetch that arrived meanwhile: the slower the store, the more events of each
        # queue fold into one write. Bounded, so a stalled store stops the fetching too.
        fetched: asyncio.Queue[dict[TopicPartition, Any]] = asyncio.Queue(PREFETCH)
        pump = asyncio.create_task(self._pump(consumer, fetched), name="kafka-fetch")
        try:
            while True:
                waiting = asyncio.ensure_future(fetched.get())
                await asyncio.wait({waiting, pump}, return_when=asyncio.FIRST_COMPLETED)
                if not waiting.done():
                    waiting.cancel()
                    pump.result()  # the bus stopped (or the fetching failed: raise it)
                    return
                fetches = [waiting.result()]
                count = sum(len(b) for b in fetches[0].values())
                while count < MAX_BATCH and not fetched.empty():
                    fetches.append(fetched.get_nowait())
                    count += sum(len(b) for b in fetches[-1].values())
                yield self._batch(consumer, fetches)
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    def _batch(
        self, consumer: AIOKafkaConsumer, fetches: Sequence[dict[TopicPartition, Any]]
    ) -> _Batch:
        sources = {self._events: Source.EVENTS, self._control: Source.CONTROL}
        parts: list[tuple[Source, list[bytes]]] = []
        offsets: dict[TopicPartition, int] = {}
        for records in fetches:
            for tp, batch in records.items():
                parts.append((sources[tp.topic], [record.value or b"" for record in batch]))
                offsets[tp] = batch[-1].offset + 1
        return _Batch(parts, consumer, offsets)

    async def _pump(
        self, consumer: AIOKafkaConsumer, fetched: asyncio.Queue[dict[TopicPartition, Any]]
    ) -> None:
        async with contextlib.aclosing(self._poll(consumer)) as polls:
            async for records in polls:
                await fetched.put(records)

    async def _poll(
        self, consumer: AIOKafkaConsumer
    ) -> AsyncGenerator[dict[TopicPartition, Any], None]:
        """Non-empty fetches until the bus stops; a failed fetch is retried, never fatal."""
        try:
            while not self._stopped.is_set():
                try:
                    records = await consumer.getmany(timeout_ms=500, max_records=MAX_BATCH)
                except KafkaError as exc:
                    log.warning("kafka fetch failed, retrying", reason=str(exc))
                    await asyncio.sleep(RECONNECT_SECONDS)
                    continue
                if records:
                    yield records
        finally:
            with contextlib.suppress(KafkaError, OSError):
                await consumer.stop()

    async def _start_consumer(
        self, *topics: str, group_id: str | None, reset: str
    ) -> AIOKafkaConsumer:
        while True:
            consumer = AIOKafkaConsumer(
                *topics,
                bootstrap_servers=self._servers,
                group_id=group_id,
                enable_auto_commit=False,
                auto_offset_reset=reset,
                max_partition_fetch_bytes=FETCH_BYTES,
                **self._security,
            )
            try:
                await consumer.start()
                log.info("kafka consumer connected", topics=topics, group=group_id)
                return consumer
            except (KafkaError, OSError) as exc:
                log.warning("kafka consumer cannot connect, retrying", reason=str(exc))
                with contextlib.suppress(Exception):
                    await consumer.stop()
                await asyncio.sleep(RECONNECT_SECONDS)
