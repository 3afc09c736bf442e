"""A test worker that behaves like the fleet's real ``arango-connector``: run as
``python tests/support/fleet_connector.py`` (no arguments), configured only by its environment.

It knows nothing of queue-manager (aiokafka, orjson and the standard library only). Behaviours,
each as the production connector has them:

* It consumes ``KAFKA_TOPIC`` in the group ``arango-connector-consumer-<QUEUE_ID>`` with
  ``auto_offset_reset="latest"`` and auto-commit (every ``FLEET_AUTO_COMMIT_MS``, default 5000):
  records produced before the group has an offset are never read.
* ``started`` once its consumers have joined their groups (a record produced after ``started``
  is read). Each record that is a JSON object is "stored" (one JSON line appended to
  ``<FLEET_SINK_DIR>/<COLLECTION_NAME>.jsonl`` when ``FLEET_SINK_DIR`` is set, the fake ArangoDB)
  and counted; after each fetched batch that stored anything, ``loading`` with the running total.
* A record it cannot decode: ``error`` with ``finished: false``
  (``cannot store record at offset <o>: <reason>``), and it goes on.
* It never ends by itself. A ``stop`` for its queue, SIGINT or the cancellation of its task:
  ``interrupted`` then ``finished`` (both ``finished: true``, its total), exit 0.
* SIGTERM: it dies at once with exit code 143, reporting nothing.

Telemetry goes to ``TELEMETRY_TOPIC`` unkeyed; commands are read from ``QUEUE_CONTROL_TOPIC`` in
the group ``control-listener-<QUEUE_ID>`` that all workers of a queue share.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fleet_common import (
    ConfigError,
    Settings,
    Telemetry,
    int_env,
    kafka_kwargs,
    listen_for_stop,
    log,
    start_group_consumer,
    stop_quietly,
)

NAME = "fleet-connector"


def die_on_sigterm() -> None:
    log(NAME, "SIGTERM: dying without a report")
    os._exit(143)


def decode(value: bytes | None) -> dict[str, Any]:
    if not value:
        raise ValueError("empty record")
    document = orjson.loads(value)
    if not isinstance(document, dict):
        raise ValueError(f"not a JSON object but {type(document).__name__}")
    return document


def append_to_sink(sink: Path, documents: list[dict[str, Any]]) -> None:
    with sink.open("ab") as handle:
        handle.writelines(orjson.dumps(document) + b"\n" for document in documents)


async def consume(
    data: AIOKafkaConsumer, telemetry: Telemetry, sink: Path | None, stop: asyncio.Event
) -> int:
    """Store records until ``stop`` is set (or the task is cancelled); return the total."""
    stored = 0
    try:
        while not stop.is_set():
            batches = await data.getmany(timeout_ms=200)
            documents: list[dict[str, Any]] = []
            for records in batches.values():
                for record in records:
                    try:
                        documents.append(decode(record.value))
                    except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
                        error = f"cannot store record at offset {record.offset}: {exc}"
                        log(NAME, error)
                        await telemetry.send("error", stored, error, error_message=error)
            if documents:
                if sink is not None:
                    append_to_sink(sink, documents)
                stored += len(documents)
                await telemetry.send("loading", stored, f"stored {stored} records")
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        log(NAME, "cancelled")
    return stored


async def run(
    settings: Settings, producer_kwargs: dict[str, Any], sink: Path | None, auto_commit_ms: int
) -> int:
    producer = AIOKafkaProducer(acks="all", **producer_kwargs)
    await producer.start()
    telemetry = Telemetry(producer, settings)
    control = await start_group_consumer(
        settings.control_topic, f"control-listener-{settings.queue_id}", NAME
    )
    data = await start_group_consumer(
        settings.data_topic,
        f"arango-connector-consumer-{settings.queue_id}",
        NAME,
        enable_auto_commit=True,
        auto_commit_interval_ms=auto_commit_ms,
    )
    stop = asyncio.Event()
    listener = asyncio.create_task(listen_for_stop(control, settings.queue_id, stop.set, NAME))
    try:
        await telemetry.send("started", 0, f"consuming {settings.data_topic}")
        stored = await consume(data, telemetry, sink, stop)
        await telemetry.send("interrupted", stored, "stopped", finished=True)
        await telemetry.send("finished", stored, f"stored {stored} records", finished=True)
    finally:
        listener.cancel()
        await stop_quietly(data, control, producer)
    return 0


async def main() -> int:
    try:
        settings = Settings.from_env()
        producer_kwargs = kafka_kwargs("PRODUCER")
        kafka_kwargs("CONSUMER")  # the consumers' credentials: checked at start-up too
        auto_commit_ms = int_env("FLEET_AUTO_COMMIT_MS", 5000) or 5000
        if not settings.data_topic:
            raise ConfigError("KAFKA_TOPIC is not set")
    except ConfigError as exc:
        log(NAME, f"fatal: {exc}")
        return 1
    sink_dir = os.environ.get("FLEET_SINK_DIR")
    sink = Path(sink_dir) / f"{settings.collection or 'records'}.jsonl" if sink_dir else None
    if sink is not None:
        sink.parent.mkdir(parents=True, exist_ok=True)

    task = asyncio.create_task(run(settings, producer_kwargs, sink, auto_commit_ms))
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, die_on_sigterm)
    loop.add_signal_handler(signal.SIGINT, task.cancel)
    try:
        code = await task
    except asyncio.CancelledError:  # cancelled before it started consuming: nothing to report
        code = 0
    log(NAME, f"exiting ({code})")
    return code


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
