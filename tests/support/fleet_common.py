"""What the fleet's test workers (``fleet_loader.py``, ``fleet_connector.py``) share: settings read
from the environment, Kafka client settings, the telemetry sender and the control listener.

Like the workers it serves, it imports only aiokafka, orjson and the standard library, never
``queue_manager``: the workers are run as plain scripts (``python tests/support/fleet_loader.py``),
which puts this directory first on ``sys.path``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.helpers import create_ssl_context

USER = "streamforge"
URL = "http://loader:8080"
# How long a consumer waits for its group to be joined before a worker goes on regardless.
JOIN_TIMEOUT_S = 30.0


class ConfigError(Exception):
    """A fatal start-up error in the environment: the worker says so on stderr and exits 1."""


def log(worker: str, text: str) -> None:
    sys.stderr.write(f"{worker}: {text}\n")
    sys.stderr.flush()


def int_env(name: str, default: int | None) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, not {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    """The variables every worker of the fleet reads (docs/worker-protocol.md, plus
    ``TELEMETRY_TOPIC`` and the per-role credentials of the platform's workers)."""

    queue_id: str
    symbol: str
    type: str
    time_range: str
    data_topic: str
    collection: str
    producer_id: str
    control_topic: str
    telemetry_topic: str
    bootstrap: str

    @classmethod
    def from_env(cls, default_type: str = "") -> Settings:
        env = os.environ
        required = ("QUEUE_ID", "KAFKA_BOOTSTRAP_SERVERS", "TELEMETRY_TOPIC")
        missing = [name for name in required if not env.get(name)]
        if missing:
            raise ConfigError(f"missing environment variable(s): {', '.join(missing)}")
        queue_id = env["QUEUE_ID"]
        return cls(
            queue_id=queue_id,
            symbol=env.get("SYMBOL", ""),
            type=env.get("TYPE") or default_type,
            time_range=env.get("TIME_RANGE", ""),
            data_topic=env.get("KAFKA_TOPIC", ""),
            collection=env.get("COLLECTION_NAME", ""),
            producer_id=env.get("TELEMETRY_PRODUCER_ID", ""),
            control_topic=env.get("QUEUE_CONTROL_TOPIC") or "queue-control",
            telemetry_topic=env["TELEMETRY_TOPIC"],
            bootstrap=env["KAFKA_BOOTSTRAP_SERVERS"],
        )


def kafka_kwargs(role: str) -> dict[str, Any]:
    """aiokafka client settings for ``role`` ``"PRODUCER"`` or ``"CONSUMER"``.

    ``KAFKA_USER_PRODUCER`` set: SASL_SSL with SCRAM-SHA-512 trusting the CA at ``CA_PATH``, as
    ``KAFKA_USER_<role>`` / ``KAFKA_PASSWORD_<role>``; unset: PLAINTEXT.
    """
    env = os.environ
    kwargs: dict[str, Any] = {"bootstrap_servers": env.get("KAFKA_BOOTSTRAP_SERVERS", "")}
    if not env.get("KAFKA_USER_PRODUCER"):
        return kwargs
    ca_path = env.get("CA_PATH", "")
    if not ca_path or not os.path.isfile(ca_path):
        raise ConfigError(f"CA_PATH {ca_path!r} is not a file: SASL_SSL needs the CA certificate")
    user, password = env.get(f"KAFKA_USER_{role}"), env.get(f"KAFKA_PASSWORD_{role}")
    if not user or password is None:
        raise ConfigError(f"KAFKA_USER_{role} and KAFKA_PASSWORD_{role} must be set")
    return kwargs | {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": user,
        "sasl_plain_password": password,
        "ssl_context": create_ssl_context(cafile=ca_path),
    }


class Telemetry:
    """Sends reports to ``TELEMETRY_TOPIC``, unkeyed, each ``sent_at`` later than the one before."""

    def __init__(self, producer: AIOKafkaProducer, settings: Settings) -> None:
        self._producer = producer
        self._settings = settings
        self._last = datetime.min.replace(tzinfo=UTC)

    def _sent_at(self) -> str:
        now = datetime.now(UTC)
        if now <= self._last:  # clock step or same microsecond: never repeat, never go back
            now = self._last + timedelta(microseconds=1)
        self._last = now
        return now.isoformat(timespec="microseconds")

    async def send(
        self,
        event: str,
        records: int,
        message: str,
        *,
        finished: bool = False,
        error_message: str | None = None,
    ) -> None:
        s = self._settings
        body = {
            "event": event,
            "queue_id": s.queue_id,
            "producer": s.producer_id,
            "records_written": records,
            "finished": finished,
            "message": message,
            "error_message": error_message,
            "sent_at": self._sent_at(),
            "symbol": s.symbol,
            "type": s.type,
            "user": USER,
            "url": URL,
        }
        await self._producer.send_and_wait(s.telemetry_topic, orjson.dumps(body), key=None)


class _Joined(ConsumerRebalanceListener):
    def __init__(self) -> None:
        self.event = asyncio.Event()

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        pass

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.event.set()


async def start_group_consumer(
    topic: str, group_id: str, worker: str, **extra: Any
) -> AIOKafkaConsumer:
    """Start a consumer of ``topic`` in ``group_id``, returning once the group is joined and the
    positions of its partitions (if it got any) are known, so that a record produced after this
    returns is read even with ``auto_offset_reset="latest"``."""
    settings = kafka_kwargs("CONSUMER") | {"auto_offset_reset": "latest"} | extra
    consumer = AIOKafkaConsumer(group_id=group_id, **settings)
    joined = _Joined()
    consumer.subscribe([topic], listener=joined)
    await consumer.start()
    try:
        await asyncio.wait_for(joined.event.wait(), JOIN_TIMEOUT_S)
        for partition in consumer.assignment():
            await consumer.position(partition)
    except TimeoutError:
        log(worker, f"group {group_id} not joined after {JOIN_TIMEOUT_S:.0f} s; going on")
    return consumer


async def listen_for_stop(
    consumer: AIOKafkaConsumer, queue_id: str, on_stop: Callable[[], None], worker: str
) -> None:
    """Read the control topic until cancelled; call ``on_stop`` for each ``stop`` for
    ``queue_id``. Anything else (other queues, other commands, non-JSON) is ignored."""
    while True:
        batches = await consumer.getmany(timeout_ms=500)
        for records in batches.values():
            for record in records:
                try:
                    command = orjson.loads(record.value or b"")
                except orjson.JSONDecodeError:
                    continue
                if (
                    isinstance(command, dict)
                    and command.get("command") == "stop"
                    and command.get("queue_id") == queue_id
                ):
                    log(worker, "stop command received")
                    on_stop()


async def stop_quietly(*clients: AIOKafkaProducer | AIOKafkaConsumer) -> None:
    for client in clients:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.stop(), 10)
