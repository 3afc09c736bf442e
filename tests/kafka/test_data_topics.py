"""KafkaDataTopics against the real broker: a connector's group is positioned before it joins
(so `auto_offset_reset="latest"` loses nothing, or skips an earlier run's records), its lag is
what it has not committed, and a broker outage is a bounded `DependencyUnavailable`."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from tests.support.kafka_broker import KafkaBroker
from tests.support.waiting import wait_until_async

from queue_manager.adapters.kafka_topics import KafkaDataTopics
from queue_manager.domain.errors import DependencyUnavailable
from queue_manager.settings import Settings

pytestmark = pytest.mark.kafka

RECEIVE_TIMEOUT_S = 30.0
#: the most a call may take with the broker down (it must fail, not hang)
OUTAGE_BOUND_S = 20.0


def data_topics(broker: KafkaBroker, *, sasl: bool, **settings: object) -> KafkaDataTopics:
    env = {name.lower(): value for name, value in broker.client_env(sasl=sasl).items()}
    return KafkaDataTopics.from_settings(Settings(_env_file=None, **env, **settings))  # type: ignore[arg-type, call-arg]


@pytest.fixture
def group() -> str:
    return f"arango-connector-consumer-{uuid.uuid4()}"


async def produce(broker: KafkaBroker, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=broker.plaintext_bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            # Keyed by value: the records spread over every partition.
            await producer.send_and_wait(topic, value, key=value)
    finally:
        await producer.stop()


def joining(broker: KafkaBroker, topic: str, group: str) -> AIOKafkaConsumer:
    """A consumer like the platform's connector: in the group, from the latest offset when the
    group has none."""
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=broker.plaintext_bootstrap,
        group_id=group,
        auto_offset_reset="latest",
        enable_auto_commit=False,
    )


async def read_and_commit(broker: KafkaBroker, topic: str, group: str, count: int) -> list[bytes]:
    """Join the group, read `count` records, commit them and leave."""
    consumer = joining(broker, topic, group)
    await consumer.start()
    try:
        values: list[bytes] = []
        async with asyncio.timeout(RECEIVE_TIMEOUT_S):
            while len(values) < count:
                batches = await consumer.getmany(timeout_ms=500)
                values += [r.value for batch in batches.values() for r in batch if r.value]
        await consumer.commit()
        return values
    finally:
        await consumer.stop()


async def partition_count(broker: KafkaBroker, topic: str) -> int | None:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.plaintext_bootstrap)
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            return None
        (meta,) = await admin.describe_topics([topic])
        return len(meta["partitions"])
    finally:
        await admin.close()


def values(prefix: str, count: int) -> list[bytes]:
    return [f"{prefix}-{i}".encode() for i in range(count)]


async def test_a_group_positioned_at_the_beginning_reads_records_produced_before_it_joined(
    running_kafka_broker: KafkaBroker, kafka_topic: str, group: str
) -> None:
    topics = data_topics(running_kafka_broker, sasl=True, data_topic_partitions=4)

    await topics.position_group(kafka_topic, group, at_end=False)

    assert await partition_count(running_kafka_broker, kafka_topic) == 4
    early = values("early", 12)
    await produce(running_kafka_broker, kafka_topic, early)
    read = await read_and_commit(running_kafka_broker, kafka_topic, group, len(early))
    assert sorted(read) == sorted(early)


async def test_a_group_positioned_at_the_end_skips_an_earlier_runs_records(
    running_kafka_broker: KafkaBroker, kafka_topic: str, group: str
) -> None:
    topics = data_topics(running_kafka_broker, sasl=False)
    await topics.position_group(kafka_topic, group, at_end=False)
    await produce(running_kafka_broker, kafka_topic, values("old", 9))

    await topics.position_group(kafka_topic, group, at_end=True)

    assert await topics.group_lag(kafka_topic, group) == 0
    new = values("new", 6)
    await produce(running_kafka_broker, kafka_topic, new)
    read = await read_and_commit(running_kafka_broker, kafka_topic, group, len(new))
    assert sorted(read) == sorted(new)
    assert await topics.group_lag(kafka_topic, group) == 0  # nothing else was left to read


async def test_lag_counts_the_records_the_group_has_not_committed(
    running_kafka_broker: KafkaBroker, kafka_topic: str, group: str
) -> None:
    topics = data_topics(running_kafka_broker, sasl=True)
    await topics.position_group(kafka_topic, group, at_end=False)
    assert await topics.group_lag(kafka_topic, group) == 0

    await produce(running_kafka_broker, kafka_topic, values("r", 10))
    assert await topics.group_lag(kafka_topic, group) == 10
    # Another group has committed nothing: it counts from the beginning of every partition.
    assert await topics.group_lag(kafka_topic, f"{group}-other") == 10

    await read_and_commit(running_kafka_broker, kafka_topic, group, 10)
    assert await topics.group_lag(kafka_topic, group) == 0


async def test_lag_of_a_missing_topic_is_zero_and_does_not_create_it(
    running_kafka_broker: KafkaBroker, kafka_topic: str, group: str
) -> None:
    # The test broker creates topics on first use: the lag must not be such a use.
    topics = data_topics(running_kafka_broker, sasl=False)

    assert await topics.group_lag(kafka_topic, group) == 0
    assert await partition_count(running_kafka_broker, kafka_topic) is None


async def test_positioning_at_the_beginning_keeps_offsets_the_group_committed(
    running_kafka_broker: KafkaBroker, kafka_topic: str, group: str
) -> None:
    topics = data_topics(running_kafka_broker, sasl=False)
    await topics.position_group(kafka_topic, group, at_end=False)
    await produce(running_kafka_broker, kafka_topic, values("read", 6))
    await read_and_commit(running_kafka_broker, kafka_topic, group, 6)
    unread = values("unread", 4)
    await produce(running_kafka_broker, kafka_topic, unread)

    await topics.position_group(kafka_topic, group, at_end=False)

    assert await topics.group_lag(kafka_topic, group) == 4
    read = await read_and_commit(running_kafka_broker, kafka_topic, group, len(unread))
    assert sorted(read) == sorted(unread)


async def test_positioning_waits_for_an_earlier_member_to_leave_the_group(
    running_kafka_broker: KafkaBroker, kafka_topic: str, group: str
) -> None:
    topics = data_topics(running_kafka_broker, sasl=False)
    await topics.position_group(kafka_topic, group, at_end=False)
    await produce(running_kafka_broker, kafka_topic, values("old", 5))
    member = joining(running_kafka_broker, kafka_topic, group)
    await member.start()  # returns once it joined the group and has its partitions
    try:
        assert member.assignment()
        with structlog.testing.capture_logs() as logs:
            positioning = asyncio.create_task(
                topics.position_group(kafka_topic, group, at_end=True)
            )

            def says_it_waits() -> bool:
                assert not positioning.done(), positioning.exception()
                return any("active members" in entry["event"] for entry in logs)

            await wait_until_async(
                says_it_waits,
                RECEIVE_TIMEOUT_S,
                what="positioning to log that it waits for the group's active members",
            )
    finally:
        await member.stop()  # leaves the group
    await asyncio.wait_for(positioning, RECEIVE_TIMEOUT_S)

    assert await topics.group_lag(kafka_topic, group) == 0


async def test_positioning_gives_up_while_the_group_keeps_a_member(
    running_kafka_broker: KafkaBroker, kafka_topic: str, group: str
) -> None:
    topics = KafkaDataTopics(
        running_kafka_broker.plaintext_bootstrap, {"security_protocol": "PLAINTEXT"}, members_wait=1
    )
    await topics.position_group(kafka_topic, group, at_end=False)
    member = joining(running_kafka_broker, kafka_topic, group)
    await member.start()
    try:
        with pytest.raises(DependencyUnavailable, match="active members") as caught:
            await asyncio.wait_for(topics.position_group(kafka_topic, group, at_end=True), 20)
        assert caught.value.dependency == "bus"
    finally:
        await member.stop()


async def test_broker_down_is_dependency_unavailable_not_a_hang(
    running_kafka_broker: KafkaBroker, kafka_topic: str, group: str
) -> None:
    broker = running_kafka_broker
    topics = data_topics(broker, sasl=False)
    await topics.position_group(kafka_topic, group, at_end=False)
    await asyncio.to_thread(broker.stop)
    try:
        for call in (
            topics.position_group(kafka_topic, group, at_end=False),
            topics.group_lag(kafka_topic, group),
        ):
            started = time.monotonic()
            with pytest.raises(DependencyUnavailable) as caught:
                await asyncio.wait_for(call, OUTAGE_BOUND_S)
            assert caught.value.dependency == "bus"
            assert time.monotonic() - started < OUTAGE_BOUND_S
    finally:
        await asyncio.to_thread(broker.start)
    assert await topics.group_lag(kafka_topic, group) == 0
