"""One bus contract, the same tests on the in-process bus and on the real Kafka broker."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from queue_manager.adapters.kafka_bus import KafkaBus
from queue_manager.adapters.memory_bus import MemoryBus
from queue_manager.domain.errors import DependencyUnavailable
from queue_manager.domain.telemetry import Source
from queue_manager.kafka_security import client_security
from queue_manager.ports import Bus, Command, Message
from tests.support.kafka_broker import KafkaBroker
from tests.support.waiting import wait_until_async


@pytest.fixture(params=["memory", "kafka-plaintext", "kafka-sasl"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    if request.param == "memory":
        bus: Bus = MemoryBus()
    else:
        broker: KafkaBroker = request.getfixturevalue("running_kafka_broker")
        env = broker.client_env(sasl=request.param == "kafka-sasl")
        suffix = uuid.uuid4().hex[:8]
        bus = KafkaBus(
            env["KAFKA_BOOTSTRAP_SERVERS"],
            client_security(env.get("KAFKA_USER"), env.get("KAFKA_PASSWORD"), env.get("CA_PATH")),  # type: ignore[arg-type]
            control_topic=f"control-{suffix}",
            events_topic=f"events-{suffix}",
            updates_topic=f"updates-{suffix}",
            group_id=f"qm-{suffix}",
        )
    await bus.start()
    await _until_ready(bus)
    yield bus
    await bus.stop()


async def _until_ready(bus: Bus) -> None:
    """Kafka connects in the background: until its ping answers (up to 20 s)."""

    async def answers() -> bool:
        await bus.ping()
        return True

    await wait_until_async(
        answers, 20, what="the bus to answer its ping", every=0.2, ignore=(DependencyUnavailable,)
    )


async def _collect(bus: Bus, count: int, within: float = 30) -> list[Message]:
    got: list[Message] = []

    async def run() -> None:
        async with contextlib.aclosing(bus.batches()) as batches:  # type: ignore[type-var]
            async for batch in batches:
                got.extend(Message(s, v) for s, values in batch.parts for v in values)
                await batch.commit()
                if len(got) >= count:
                    return

    await asyncio.wait_for(run(), within)
    return got


def _event(queue_id: str, n: int) -> bytes:
    return orjson.dumps({"event": "loading", "queue_id": queue_id, "records_written": n})


async def test_telemetry_arrives_in_order_per_queue(bus: Bus) -> None:
    for n in range(50):
        await bus.send_telemetry(_event("q-1", n))
    got = await _collect(bus, 50)
    assert [m.source for m in got] == [Source.EVENTS] * 50
    assert [orjson.loads(m.value)["records_written"] for m in got] == list(range(50))


async def test_commands_travel_on_the_control_topic(bus: Bus) -> None:
    command = Command(queue_id="q-2", command="stop", command_id="c-1", sent_at="now")
    await bus.send_command(command)
    (message,) = await _collect(bus, 1)
    assert message.source is Source.CONTROL
    body: dict[str, Any] = orjson.loads(message.value)
    assert body == command.as_message()


async def test_ping_answers_when_up_and_fails_once_stopped(bus: Bus) -> None:
    await bus.ping()
    await bus.stop()
    with pytest.raises(DependencyUnavailable) as caught:
        await bus.ping()
    assert caught.value.dependency == "bus"


async def test_updates_reach_every_subscriber_in_order(bus: Bus) -> None:
    got: list[dict[str, Any]] = []
    subscribed = asyncio.Event()

    async def read() -> None:
        async with contextlib.aclosing(bus.updates()) as updates:  # type: ignore[type-var]
            async for value in updates:
                (update,) = orjson.loads(value)
                if "probe" in update:
                    subscribed.set()
                    continue
                got.append(update)
                if len(got) == 20:
                    return

    reader = asyncio.create_task(read())
    # A subscriber sees only updates sent after it joined: probe until one comes through.

    async def heard_a_probe() -> bool:
        if subscribed.is_set():
            return True
        await bus.send_updates(orjson.dumps([{"probe": True}]))
        return False

    await wait_until_async(
        heard_a_probe, 30, every=0.2, what="the subscriber to hear a probe update"
    )
    for n in range(20):
        await bus.send_updates(orjson.dumps([{"n": n}]))
    await asyncio.wait_for(reader, 30)
    assert [update["n"] for update in got] == list(range(20))
