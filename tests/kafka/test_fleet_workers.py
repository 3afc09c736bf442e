"""The fleet's test workers (tests/support/fleet_loader.py, fleet_connector.py) keep behaving like
the platform's real loader-producer and arango-connector, against the real broker.

Outcomes are decided by events (telemetry read back from the broker, process exits, an HTTP
answer), never by sleeping.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from tests.support.kafka_broker import KafkaBroker
from tests.support.waiting import wait_until_async

pytestmark = pytest.mark.kafka

SUPPORT = Path(__file__).resolve().parents[1] / "support"
LOADER = SUPPORT / "fleet_loader.py"
CONNECTOR = SUPPORT / "fleet_connector.py"
TIMEOUT_S = 60.0
PARTITIONS = 3  # of the data and telemetry topics (the others have 1)

Event = dict[str, Any]


# --------------------------------------------------------------------------- helpers


@dataclass
class Topics:
    queue_id: str
    data: str
    telemetry: str
    control: str
    decoy_events: str  # QUEUE_EVENTS_TOPIC: the workers must not write there


async def create_topics(broker: KafkaBroker, partitions: dict[str, int]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.plaintext_bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, count, replication_factor=1) for name, count in partitions.items()]
        )
    finally:
        await admin.close()


@pytest.fixture
async def topics(running_kafka_broker: KafkaBroker) -> Topics:
    queue_id = str(uuid.uuid4())
    t = Topics(
        queue_id=queue_id,
        data=f"{queue_id}.api_candles_1m",
        telemetry=f"telemetry-{queue_id}",
        control=f"control-{queue_id}",
        decoy_events=f"events-{queue_id}",
    )
    await create_topics(
        running_kafka_broker,
        {t.data: PARTITIONS, t.telemetry: PARTITIONS, t.control: 1, t.decoy_events: 1},
    )
    return t


def worker_env(
    broker: KafkaBroker, topics: Topics, producer_id: str, *, sasl: bool = False, **knobs: str
) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "QUEUE_ID": topics.queue_id,
        "SYMBOL": "BTCUSDT",
        "TYPE": "api_candles_1m",
        "TIME_RANGE": "2024-01-01:2024-01-02",
        "KAFKA_TOPIC": topics.data,
        "COLLECTION_NAME": "btc_candles_1m",
        "TELEMETRY_PRODUCER_ID": producer_id,
        "QUEUE_CONTROL_TOPIC": topics.control,
        "TELEMETRY_TOPIC": topics.telemetry,
        "QUEUE_EVENTS_TOPIC": topics.decoy_events,
        "KAFKA_BOOTSTRAP_SERVERS": broker.plaintext_bootstrap,
    }
    if sasl:  # the platform's workers take per-role credentials, never KAFKA_USER
        env |= {
            "KAFKA_BOOTSTRAP_SERVERS": broker.sasl_ssl_bootstrap,
            "KAFKA_USER_PRODUCER": broker.username,
            "KAFKA_PASSWORD_PRODUCER": broker.password,
            "KAFKA_USER_CONSUMER": broker.username,
            "KAFKA_PASSWORD_CONSUMER": broker.password,
            "CA_PATH": broker.ca_path,
        }
    return env | knobs


@dataclass
class Worker:
    """A worker subprocess whose merged stdout/stderr is collected line by line."""

    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    _new_line: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, script: Path, env: dict[str, str]) -> Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            env=env,
            cwd=SUPPORT.parents[1],
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        worker = cls(process)
        worker._reader = asyncio.create_task(worker._read())
        return worker

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self.lines.append(line.decode(errors="replace").rstrip())
            self._new_line.set()
        self._new_line.set()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    async def wait_for_line(self, needle: str) -> str:
        def find() -> str | None:
            ended = self._reader is not None and self._reader.done()  # before the lines are read
            for line in self.lines:
                if needle in line:
                    return line
            if ended:
                raise AssertionError(f"exited without logging {needle!r}:\n{self.output}")
            return None

        line: str = await wait_until_async(
            find,
            TIMEOUT_S,
            what=f"the worker to log {needle!r}",
            wake=self._new_line,
            detail=lambda: f"its output:\n{self.output}",
        )
        return line

    async def exit_code(self) -> int:
        try:
            code = await asyncio.wait_for(self.process.wait(), TIMEOUT_S)
        except TimeoutError:
            raise AssertionError(f"the worker did not exit:\n{self.output}") from None
        if self._reader is not None:
            await self._reader
        return code

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        if self._reader is not None:
            await self._reader


@pytest.fixture
async def workers() -> AsyncIterator[list[Worker]]:
    """Every worker a test starts; any still running at the end is killed."""
    started: list[Worker] = []
    yield started
    for worker in started:
        await worker.kill()


class TelemetryReader:
    """Reads a telemetry topic from its beginning, on all its partitions."""

    def __init__(self, broker: KafkaBroker, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=broker.plaintext_bootstrap, enable_auto_commit=False
        )
        self.topic = topic
        self.keys: list[bytes | None] = []
        self.events: list[Event] = []

    async def __aenter__(self) -> TelemetryReader:
        await self.consumer.start()
        self.consumer.assign([TopicPartition(self.topic, p) for p in range(PARTITIONS)])
        await self.consumer.seek_to_beginning()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    async def _poll(self) -> None:
        batches = await self.consumer.getmany(timeout_ms=200)
        for records in batches.values():
            for record in records:
                self.keys.append(record.key)
                self.events.append(orjson.loads(record.value or b""))

    def of(self, producer: str) -> list[Event]:
        """``producer``'s reports so far, in the order it sent them (``sent_at``)."""
        mine = [event for event in self.events if event["producer"] == producer]
        return sorted(mine, key=lambda event: event["sent_at"])

    async def until(
        self, producer: str, done: Callable[[list[Event]], bool], worker: Worker | None = None
    ) -> list[Event]:
        """Read until ``done(producer's reports)``; fail if ``worker`` exits first (after a last
        read) or after ``TIMEOUT_S``."""

        async def read() -> list[Event] | None:
            await self._poll()  # waits up to 200 ms for the next records
            if done(self.of(producer)):
                return self.of(producer)
            if worker is not None and worker.process.returncode is not None:
                await self.drain()
                if done(self.of(producer)):
                    return self.of(producer)
                raise AssertionError(f"worker exited: {self.of(producer)}\n{worker.output}")
            return None

        events: list[Event] = await wait_until_async(
            read,
            TIMEOUT_S,
            what=f"the reports of {producer} to be complete",
            every=0,  # the poll itself waits for records
            detail=lambda: f"reports: {self.of(producer)}\n{worker.output if worker else ''}",
        )
        return events

    async def drain(self) -> None:
        """Read everything the topic holds right now."""
        end = await self.consumer.end_offsets(list(self.consumer.assignment()))

        async def read_to_the_end() -> bool:
            if [tp for tp, offset in end.items() if await self.consumer.position(tp) < offset]:
                await self._poll()  # waits up to 200 ms for the next records
                return False
            return True

        await wait_until_async(
            read_to_the_end, TIMEOUT_S, what=f"{self.topic} read to its end", every=0
        )


def event_named(name: str, **fields: Any) -> Callable[[list[Event]], bool]:
    return lambda events: any(
        e["event"] == name and all(e.get(k) == v for k, v in fields.items()) for e in events
    )


async def end_offsets(broker: KafkaBroker, topic: str, partitions: int = PARTITIONS) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.plaintext_bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return sum((await consumer.end_offsets(tps)).values())
    finally:
        await consumer.stop()


async def read_topic(broker: KafkaBroker, topic: str, count: int) -> list[tuple[Any, bytes]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=broker.plaintext_bootstrap,
        group_id=f"reader-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        found: list[tuple[Any, bytes]] = []
        while len(found) < count:
            record = await asyncio.wait_for(consumer.getone(), TIMEOUT_S)
            found.append((record.key, record.value or b""))
        return found
    finally:
        await consumer.stop()


async def commit_start_offsets(broker: KafkaBroker, topic: str, group_id: str) -> None:
    """What queue-manager does before it launches a connector: the group starts at offset 0."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker.plaintext_bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.commit(dict.fromkeys(partitions, 0))
    finally:
        await consumer.stop()


async def publish(broker: KafkaBroker, topic: str, *values: bytes, key: bytes | None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=broker.plaintext_bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def http_get(url: str) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), TIMEOUT_S)
    writer.close()
    return answer


def names(events: list[Event]) -> list[str]:
    return [event["event"] for event in events]


# --------------------------------------------------------------------------- tests


async def test_sasl_without_a_ca_file_exits_at_once(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "QUEUE_ID": "q",
        "TELEMETRY_TOPIC": "telemetry",
        "KAFKA_TOPIC": "q.api_candles_1m",
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
        "KAFKA_USER_PRODUCER": "u",
        "KAFKA_PASSWORD_PRODUCER": "p",
        "KAFKA_USER_CONSUMER": "u",
        "KAFKA_PASSWORD_CONSUMER": "p",
        "CA_PATH": str(tmp_path / "missing.pem"),
    }
    for script in (LOADER, CONNECTOR):
        worker = await Worker.start(script, env)
        assert await worker.exit_code() == 1
        assert "CA_PATH" in worker.output


async def test_loader_with_a_bare_type_reports_and_exits_1(
    running_kafka_broker: KafkaBroker, topics: Topics, workers: list[Worker]
) -> None:
    producer_id = f"loader-producer-{topics.queue_id}-0"
    env = worker_env(running_kafka_broker, topics, producer_id, TYPE="api")
    workers.append(loader := await Worker.start(LOADER, env))

    assert await loader.exit_code() == 1
    async with TelemetryReader(running_kafka_broker, topics.telemetry) as telemetry:
        await telemetry.drain()
    events = telemetry.of(producer_id)
    assert names(events) == ["error", "finished"], loader.output
    assert events[0]["finished"] is True
    assert events[0]["error_message"] == "unsupported TYPE: api"
    assert events[1]["finished"] is True


async def test_loader_over_sasl_ssl_produces_reports_unkeyed_and_stays_up(
    running_kafka_broker: KafkaBroker, topics: Topics, workers: list[Worker]
) -> None:
    broker = running_kafka_broker
    producer_id = f"loader-producer-{topics.queue_id}-0"
    env = worker_env(broker, topics, producer_id, sasl=True, FLEET_RECORDS="25", FLEET_BATCH="10")
    workers.append(loader := await Worker.start(LOADER, env))

    async with TelemetryReader(broker, topics.telemetry) as telemetry:
        events = await telemetry.until(producer_id, event_named("finished"), loader)
    assert names(events) == ["started", "loading", "loading", "finished"]
    assert [e["records_written"] for e in events] == [0, 10, 20, 25]
    assert [e["finished"] for e in events] == [False, False, False, True]
    assert set(telemetry.keys) == {None}
    sent_at = [e["sent_at"] for e in events]
    assert sent_at == sorted(set(sent_at))
    assert {e["type"] for e in events} == {"api_candles_1m"}
    assert {(e["user"], e["url"]) for e in events} == {("streamforge", "http://loader:8080")}

    records = await read_topic(broker, topics.data, 25)
    assert {key for key, _ in records} == {None}
    assert sorted(orjson.loads(value)["i"] for _, value in records) == list(range(25))
    assert await end_offsets(broker, topics.data) == 25
    assert await end_offsets(broker, topics.decoy_events, 1) == 0  # QUEUE_EVENTS_TOPIC unused

    # Still up after `finished`: it answers HTTP, and only SIGTERM ends it (exit 0).
    url = (await loader.wait_for_line("serving HTTP on ")).rsplit(" ", 1)[1]
    answer = await http_get(url)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok")
    assert loader.process.returncode is None
    loader.process.send_signal(signal.SIGTERM)
    assert await loader.exit_code() == 0


async def test_connector_reads_from_committed_offsets_and_stops_on_command(
    running_kafka_broker: KafkaBroker, topics: Topics, workers: list[Worker], tmp_path: Path
) -> None:
    broker = running_kafka_broker
    loader_id = f"loader-producer-{topics.queue_id}-0"
    connector_id = f"arango-connector-{topics.queue_id}-1"
    loader_env = worker_env(broker, topics, loader_id, FLEET_RECORDS="30", FLEET_BAD_RECORDS="7")
    workers.append(loader := await Worker.start(LOADER, loader_env))
    async with TelemetryReader(broker, topics.telemetry) as telemetry:
        await telemetry.until(loader_id, event_named("finished", records_written=30), loader)
        loader.process.send_signal(signal.SIGTERM)
        assert await loader.exit_code() == 0

        await commit_start_offsets(
            broker, topics.data, f"arango-connector-consumer-{topics.queue_id}"
        )
        env = worker_env(broker, topics, connector_id, FLEET_SINK_DIR=str(tmp_path))
        workers.append(connector := await Worker.start(CONNECTOR, env))
        events = await telemetry.until(
            connector_id, event_named("loading", records_written=29), connector
        )
        errors = [e for e in events if e["event"] == "error"]
        assert len(errors) == 1, events
        assert errors[0]["finished"] is False
        assert errors[0]["error_message"].startswith("cannot store record at offset ")
        assert names(events)[0] == "started"
        assert connector.process.returncode is None  # an error does not end it

        # Junk and another queue's stop are ignored; its own stop ends it.
        stop = {"command": "stop", "payload": {}, "command_id": str(uuid.uuid4())}
        await publish(
            broker,
            topics.control,
            b"\x00 not a command",
            orjson.dumps(stop | {"queue_id": str(uuid.uuid4())}),
            orjson.dumps(stop | {"queue_id": topics.queue_id}),
            key=topics.queue_id.encode(),
        )
        events = await telemetry.until(connector_id, event_named("finished"), connector)
        assert await connector.exit_code() == 0

    assert names(events)[-2:] == ["interrupted", "finished"]
    assert [(e["finished"], e["records_written"]) for e in events[-2:]] == [(True, 29)] * 2
    assert set(telemetry.keys) == {None}
    stored = (tmp_path / "btc_candles_1m.jsonl").read_bytes().splitlines()
    assert sorted(orjson.loads(line)["i"] for line in stored) == [i for i in range(30) if i != 7]


async def test_connector_without_committed_offsets_skips_earlier_records(
    running_kafka_broker: KafkaBroker, topics: Topics, workers: list[Worker], tmp_path: Path
) -> None:
    broker = running_kafka_broker
    connector_id = f"arango-connector-{topics.queue_id}-1"
    await publish(broker, topics.data, *(orjson.dumps({"i": i}) for i in range(5)), key=None)

    env = worker_env(broker, topics, connector_id, FLEET_SINK_DIR=str(tmp_path))
    workers.append(connector := await Worker.start(CONNECTOR, env))
    async with TelemetryReader(broker, topics.telemetry) as telemetry:
        await telemetry.until(connector_id, event_named("started"), connector)
        await publish(
            broker, topics.data, *(orjson.dumps({"i": i}) for i in range(100, 104)), key=None
        )
        await telemetry.until(
            connector_id, lambda es: any(e["records_written"] >= 4 for e in es), connector
        )
        stop = orjson.dumps({"command": "stop", "queue_id": topics.queue_id})
        await publish(broker, topics.control, stop, key=topics.queue_id.encode())
        events = await telemetry.until(connector_id, event_named("finished"), connector)
        assert await connector.exit_code() == 0

    assert events[-1]["records_written"] == 4
    stored = (tmp_path / "btc_candles_1m.jsonl").read_bytes().splitlines()
    assert sorted(orjson.loads(line)["i"] for line in stored) == [100, 101, 102, 103]


async def test_connector_dies_on_sigterm_without_a_report(
    running_kafka_broker: KafkaBroker, topics: Topics, workers: list[Worker]
) -> None:
    broker = running_kafka_broker
    connector_id = f"arango-connector-{topics.queue_id}-1"
    workers.append(
        connector := await Worker.start(CONNECTOR, worker_env(broker, topics, connector_id))
    )
    async with TelemetryReader(broker, topics.telemetry) as telemetry:
        await telemetry.until(connector_id, event_named("started"), connector)
        connector.process.send_signal(signal.SIGTERM)
        assert await connector.exit_code() == 143
        await telemetry.drain()  # everything it sent was acknowledged before it died
    assert names(telemetry.of(connector_id)) == ["started"]


async def test_loader_fatal_error_reports_error_then_finished_and_stays_up(
    running_kafka_broker: KafkaBroker, topics: Topics, workers: list[Worker]
) -> None:
    producer_id = f"loader-producer-{topics.queue_id}-0"
    env = worker_env(running_kafka_broker, topics, producer_id, FLEET_LOADER_FAIL_AFTER="15")
    workers.append(loader := await Worker.start(LOADER, env))

    async with TelemetryReader(running_kafka_broker, topics.telemetry) as telemetry:
        events = await telemetry.until(producer_id, event_named("finished"), loader)
    assert names(events) == ["started", "loading", "error", "finished"]
    error, finished = events[-2:]
    assert error["error_message"] == "fatal: exchange download failed after 15 records"
    assert (error["finished"], error["records_written"]) == (True, 15)
    assert (finished["finished"], finished["records_written"]) == (True, 15)
    assert await end_offsets(running_kafka_broker, topics.data) == 15

    url = (await loader.wait_for_line("serving HTTP on ")).rsplit(" ", 1)[1]
    assert (await http_get(url)).startswith(b"HTTP/1.1 200")
    loader.process.send_signal(signal.SIGTERM)
    assert await loader.exit_code() == 0


async def test_loader_stopped_while_loading_reports_interrupted_and_stays_up(
    running_kafka_broker: KafkaBroker, topics: Topics, workers: list[Worker]
) -> None:
    broker = running_kafka_broker
    producer_id = f"loader-producer-{topics.queue_id}-0"
    env = worker_env(broker, topics, producer_id, FLEET_RECORDS="1000000", FLEET_PAUSE_MS="50")
    workers.append(loader := await Worker.start(LOADER, env))

    async with TelemetryReader(broker, topics.telemetry) as telemetry:
        await telemetry.until(producer_id, event_named("loading"), loader)
        stop = orjson.dumps({"command": "stop", "queue_id": topics.queue_id})
        await publish(broker, topics.control, stop, key=topics.queue_id.encode())
        events = await telemetry.until(producer_id, event_named("interrupted"), loader)
    interrupted = events[-1]
    assert interrupted["finished"] is True
    assert 10 <= interrupted["records_written"] < 1_000_000
    assert await end_offsets(broker, topics.data) == interrupted["records_written"]

    # A stop heard after its end is only logged; it keeps serving until SIGTERM.
    await publish(broker, topics.control, stop, key=topics.queue_id.encode())
    await loader.wait_for_line("stop ignored")
    url = (await loader.wait_for_line("serving HTTP on ")).rsplit(" ", 1)[1]
    assert (await http_get(url)).startswith(b"HTTP/1.1 200")
    loader.process.send_signal(signal.SIGTERM)
    assert await loader.exit_code() == 0
    async with TelemetryReader(broker, topics.telemetry) as telemetry:
        await telemetry.drain()
    assert names(telemetry.of(producer_id))[-1] == "interrupted"
