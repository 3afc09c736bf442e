"""The workers' data topics on Kafka (docs/pipelines.md) with aiokafka: where a connector's
consumer group starts reading, and how far behind it is (the `DataTopics` port).

The platform's arango-connector reads `<queue_id>.<type>` in its own group with
`auto_offset_reset="latest"`: records produced before it joins are lost unless the group has
committed offsets already. So before a loader and its connector start, the group is given one on
every partition, as a "simple consumer" (generation -1, no membership): the broker accepts that
only while the group has no active members, so the commit is retried while an earlier connector
still sits in the group (its session timeout), then fails with `DependencyUnavailable`.

Each call opens its own clients and closes them. The calls are rare (once per connector launch,
a lag read every few seconds per draining connector): a connection's set-up costs a few
milliseconds there, and a long-lived client would need a lifecycle the port has not and its own
reconnection after a broker outage. The consumer cannot be shared anyway: its group is fixed
when it is made.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    CommitFailedError,
    KafkaError,
    NoError,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
    UnknownTopicOrPartitionError,
    for_code,
)
from aiokafka.protocol.metadata import MetadataRequest
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

from queue_manager.domain.errors import DependencyUnavailable
from queue_manager.settings import Settings

log = structlog.get_logger(__name__)

CLIENT_ID = "queue-manager-data-topics"
REQUEST_TIMEOUT = 5.0
#: the most one call waits on the broker for one step (connect, create the topic and see its
#: partitions, read the offsets; one attempt to commit), so a broker gone mid-call cannot hang it
CALL_TIMEOUT = 15.0
#: how long a commit is retried while the group has active members
MEMBERS_WAIT = 30.0
METADATA_BACKOFF = 0.1
#: how long closing a client may take (`_closed`)
CLOSE_WAIT = 2.0


class KafkaDataTopics:
    """`DataTopics` on Kafka; `partitions`: DATA_TOPIC_PARTITIONS, of the topics it creates;
    `members_wait`: how long a commit waits for the group's active members to leave."""

    def __init__(
        self,
        bootstrap_servers: str,
        security: dict[str, Any],
        *,
        partitions: int = 3,
        members_wait: float = MEMBERS_WAIT,
        call_timeout: float = CALL_TIMEOUT,
    ) -> None:
        self._servers = bootstrap_servers
        self._security = security
        self._partitions = partitions
        self._members_wait = members_wait
        self._call_timeout = call_timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaDataTopics:
        servers, security = settings.kafka_connection()
        return cls(
            servers,
            security,
            partitions=settings.data_topic_partitions,
        )

    # -- port -----------------------------------------------------------------------------------

    async def position_group(self, topic: str, group: str, *, at_end: bool) -> None:
        try:
            # One deadline for the whole call: its step stays claimed, and a client's start
            # request may wait, while it runs.
            async with asyncio.timeout(2 * self._call_timeout + self._members_wait):
                offsets = await self._position(topic, group, at_end=at_end)
        except CommitFailedError as exc:
            raise DependencyUnavailable(
                "bus",
                f"consumer group {group} still has active members after "
                f"{self._members_wait:.0f} s (an earlier connector?): cannot set its offsets "
                f"on {topic}",
            ) from exc
        except (KafkaError, OSError, TimeoutError) as exc:
            raise DependencyUnavailable(
                "bus", f"kafka: cannot position group {group} on {topic}: {exc!r}"
            ) from exc
        log.info(
            "consumer group positioned",
            topic=topic,
            group=group,
            at_end=at_end,
            committed={tp.partition: offset for tp, offset in offsets.items()},
        )

    async def _position(self, topic: str, group: str, *, at_end: bool) -> dict[TopicPartition, int]:
        async with asyncio.timeout(self._call_timeout), self._admin() as admin:
            await self._create(admin, topic)
            partitions = await _partitions(admin, topic, missing_ok=False)
        assert partitions is not None
        tps = [TopicPartition(topic, p) for p in partitions]
        async with self._consumer(group) as consumer:
            consumer.assign(tps)  # commit() takes only assigned partitions
            consumer.pause(*tps)  # and nothing is to be fetched
            retrying = AsyncRetrying(
                stop=stop_after_delay(self._members_wait),
                wait=wait_exponential(multiplier=0.2, min=0.2, max=2.0),
                retry=retry_if_exception_type(CommitFailedError),
                before_sleep=_members_left(topic, group),
                reraise=True,
            )
            async for attempt in retrying:
                with attempt:
                    async with asyncio.timeout(self._call_timeout):
                        # Read again each time: a member may have committed meanwhile.
                        offsets = await _commit_start(consumer, tps, at_end=at_end)
        return offsets

    async def group_lag(self, topic: str, group: str) -> int | None:
        try:
            async with asyncio.timeout(self._call_timeout):
                async with self._admin() as admin:
                    partitions = await _partitions(admin, topic, missing_ok=True)
                if partitions is None:
                    return 0  # no topic, nothing to read
                tps = [TopicPartition(topic, p) for p in partitions]
                async with self._consumer(group) as consumer:
                    beginning, end, committed = await _offsets(consumer, tps)
        except (KafkaError, OSError, TimeoutError) as exc:
            raise DependencyUnavailable(
                "bus", f"kafka: cannot read the lag of group {group} on {topic}: {exc!r}"
            ) from exc
        return sum(_unread(beginning[tp], end[tp], committed[tp]) for tp in tps)

    # -- clients --------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _admin(self) -> AsyncIterator[Any]:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self._servers,
            client_id=CLIENT_ID,
            request_timeout_ms=int(REQUEST_TIMEOUT * 1000),
            **self._security,
        )
        try:
            await admin.start()
            yield admin
        finally:
            await _closed(admin.close())

    @contextlib.asynccontextmanager
    async def _consumer(self, group: str) -> AsyncIterator[Any]:
        # With a group but no subscription it never joins the group: it only reads offsets and
        # commits as a simple consumer (docs at the top).
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._servers,
            client_id=CLIENT_ID,
            group_id=group,
            enable_auto_commit=False,
            request_timeout_ms=int(REQUEST_TIMEOUT * 1000),
            **self._security,
        )
        try:
            async with asyncio.timeout(self._call_timeout):
                await consumer.start()
            yield consumer
        finally:
            await _closed(consumer.stop())

    async def _create(self, admin: Any, topic: str) -> None:
        # Replication factor -1: the broker's default.replication.factor, as for a topic it
        # creates itself. aiokafka's NewTopic refuses -1 without an assignment, so an empty one
        # is given (it sends none); brokers since Kafka 2.4 take -1 in any CreateTopics version.
        new = NewTopic(topic, self._partitions, -1, replica_assignments={})
        response = await admin.create_topics([new])
        for name, code, *message in response.topic_errors:
            error = for_code(code)
            if error is NoError:
                log.info("data topic created", topic=name, partitions=self._partitions)
            elif error is TopicAuthorizationFailedError:
                # Not allowed to create topics: enough when it exists already.
                if await _partitions(admin, topic, missing_ok=True) is None:
                    raise error(f"not allowed to create topic {name}")
            elif error is not TopicAlreadyExistsError:
                raise error(f"creating topic {name}: {message[0] if message else ''}")


async def _closed(close: Awaitable[None]) -> None:
    """Close a client, waiting at most CLOSE_WAIT. aiokafka's close waits for each connection
    to be gone, and over TLS that is asyncio's SSL shutdown: when the broker leaves the
    close_notify unanswered, 30 s (ssl_shutdown_timeout) on which a client's start request or
    a drain check would wait. The connections are closing by then; the rest is theirs."""
    with contextlib.suppress(KafkaError, OSError, TimeoutError):
        async with asyncio.timeout(CLOSE_WAIT):
            await close


async def _partitions(admin: Any, topic: str, *, missing_ok: bool) -> list[int] | None:
    """The topic's partitions once each has a leader (a topic just created may not be known to
    every broker yet); None when it does not exist and `missing_ok`."""
    while True:
        found = [t for t in await _describe_topic(admin, topic) if t["topic"] == topic]
        meta = found[0] if found else {"error_code": UnknownTopicOrPartitionError.errno}
        error = for_code(meta["error_code"])
        if error is UnknownTopicOrPartitionError and missing_ok:
            return None
        if error is not NoError and not error.retriable:
            raise error(f"metadata of topic {topic}")
        partitions = meta.get("partitions") or []
        if error is NoError and partitions and all(p["leader"] >= 0 for p in partitions):
            return sorted(p["partition"] for p in partitions)
        await asyncio.sleep(METADATA_BACKOFF)


async def _describe_topic(admin: Any, topic: str) -> list[dict[str, Any]]:
    """`admin.describe_topics([topic])` without creating the topic.

    aiokafka asks for metadata with `allow_auto_topic_creation` on (aiokafka 0.14,
    protocol/metadata.py `MetadataRequest.build`, and admin/client.py `_get_cluster_metadata`
    gives no way to turn it off): on a broker with auto.create.topics.enable, describing a
    missing topic creates it, with the broker's default partitions. So the request is sent
    through the admin client's own `_send_request`, with auto-creation off."""
    request = MetadataRequest([topic], allow_auto_topic_creation=False)
    response = await admin._send_request(request)
    topics: list[dict[str, Any]] = response.to_object()["topics"]
    return topics


async def _offsets(
    consumer: Any, tps: Sequence[TopicPartition]
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int], dict[TopicPartition, int | None]]:
    """Each partition's first and next offsets, and the group's committed one (None: none)."""
    beginning, end, *committed = await asyncio.gather(
        consumer.beginning_offsets(tps),
        consumer.end_offsets(tps),
        *(consumer.committed(tp) for tp in tps),
    )
    return beginning, end, dict(zip(tps, committed, strict=True))


async def _commit_start(
    consumer: Any, tps: Sequence[TopicPartition], *, at_end: bool
) -> dict[TopicPartition, int]:
    """Commit where the group starts; returns what was committed."""
    beginning, end, committed = await _offsets(consumer, tps)
    if at_end:
        offsets = {tp: end[tp] for tp in tps}
    else:
        # An offset outside the partition's records (expired, or left by a deleted topic of
        # that name) would make the connector reset to the latest and skip what is there.
        offsets = {
            tp: beginning[tp]
            for tp in tps
            if (offset := committed[tp]) is None or not beginning[tp] <= offset <= end[tp]
        }
    if offsets:
        await consumer.commit(offsets)
    return offsets


def _unread(beginning: int, end: int, committed: int | None) -> int:
    start = beginning if committed is None else max(committed, beginning)
    return max(0, end - start)


def _members_left(topic: str, group: str) -> Any:
    def before_sleep(state: RetryCallState) -> None:
        if state.attempt_number == 1:
            log.warning(
                "consumer group has active members, waiting for them to leave",
                topic=topic,
                group=group,
            )

    return before_sleep
