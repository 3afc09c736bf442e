"""A test worker that behaves like the fleet's real ``loader-producer``: run as
``python tests/support/fleet_loader.py`` (no arguments), configured only by its environment.

It knows nothing of queue-manager (aiokafka, orjson and the standard library only). Behaviours,
each as the production loader has them:

* ``TYPE`` (default ``api_candles_1m``) must be a full data type: ``api_candles_<interval>``,
  ``ws_candles_<interval>``, ``ws_trades`` or ``api_trades``. Anything else (``api``, ``ws``...)
  is a fatal start-up error: ``error`` (``finished: true``, ``unsupported TYPE: <value>``), then
  ``finished``, then exit 1. With ``KAFKA_USER_PRODUCER`` set and no readable ``CA_PATH`` it
  exits 1 at once, reporting nothing.
* Otherwise: ``started``, then ``FLEET_RECORDS`` unkeyed records to ``KAFKA_TOPIC``
  (``{"i", "symbol", "type", "ts"}``; the indexes in ``FLEET_BAD_RECORDS`` as bytes that are not
  JSON), acks=all, flushed before each ``loading`` report (every ``FLEET_BATCH`` records, the
  running total), then ``finished`` (``finished: true``).
* ``FLEET_LOADER_FAIL_AFTER=N``: after N records, ``error`` (``finished: true``,
  ``fatal: exchange download failed after N records``) then ``finished``.
* A ``stop`` for its queue heard while loading: ``interrupted`` (``finished: true``) with the
  records so far, and no more records.
* After its last report it does NOT exit: it keeps serving HTTP (``200 ok`` on 127.0.0.1, a port
  it logs on stderr) and hearing control commands (a ``stop`` is then only logged) until SIGTERM
  or SIGINT, on which it exits 0 without a report. ``FLEET_LOADER_HOLD=0`` (a test knob, not
  production behaviour) makes it exit after its last report instead: 0, or 1 after an error.

Telemetry goes to ``TELEMETRY_TOPIC`` unkeyed; commands are read from ``QUEUE_CONTROL_TOPIC`` in
the group ``control-listener-<QUEUE_ID>`` that all workers of a queue share.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from aiokafka import AIOKafkaProducer
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

NAME = "fleet-loader"
TYPE_RE = re.compile(r"(?:api|ws)_candles_(?P<n>[1-9]\d*)(?P<unit>[smhdwM])|(?:api|ws)_trades")
UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
UNIT_MS["M"] = 30 * UNIT_MS["d"]
BAD_RECORD = b"\xff not json"


@dataclass(frozen=True)
class Knobs:
    records: int
    batch: int
    fail_after: int | None
    bad: frozenset[int]
    pause_s: float
    hold: bool

    @classmethod
    def from_env(cls) -> Knobs:
        bad = os.environ.get("FLEET_BAD_RECORDS", "")
        try:
            bad_indexes = frozenset(int(i) for i in bad.split(",") if i.strip())
        except ValueError:
            raise ConfigError(
                f"FLEET_BAD_RECORDS must be a comma list of indexes: {bad!r}"
            ) from None
        return cls(
            records=int_env("FLEET_RECORDS", 100) or 0,
            batch=max(1, int_env("FLEET_BATCH", 10) or 1),
            fail_after=int_env("FLEET_LOADER_FAIL_AFTER", None),
            bad=bad_indexes,
            pause_s=(int_env("FLEET_PAUSE_MS", 20) or 0) / 1000,
            hold=os.environ.get("FLEET_LOADER_HOLD", "").strip().lower()
            not in {"0", "false", "no"},
        )


def timestamps(settings: Settings) -> tuple[int, int]:
    """The first record's time (epoch ms, from ``TIME_RANGE``) and the step between records."""
    match = TYPE_RE.fullmatch(settings.type)
    step = UNIT_MS[match["unit"]] * int(match["n"]) if match and match["unit"] else 1_000
    try:
        start = datetime.strptime(settings.time_range.split(":")[0], "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        start = datetime.now(UTC)
    return int(start.timestamp() * 1000), step


async def load(
    settings: Settings,
    knobs: Knobs,
    producer: AIOKafkaProducer,
    telemetry: Telemetry,
    stop: asyncio.Event,
) -> int:
    """Produce the records and report; return the exit code the loader would end with."""
    start_ms, step_ms = timestamps(settings)
    await telemetry.send("started", 0, f"loading {settings.symbol} {settings.type}")
    written = 0
    pending: list[asyncio.Future[object]] = []  # sent, not yet acknowledged (acks=all)
    while written < knobs.records and not stop.is_set():
        if knobs.fail_after is not None and written >= knobs.fail_after:
            break
        ts = start_ms + written * step_ms
        record = {"i": written, "symbol": settings.symbol, "type": settings.type, "ts": ts}
        value = BAD_RECORD if written in knobs.bad else orjson.dumps(record)
        pending.append(await producer.send(settings.data_topic, value, key=None))
        written += 1
        if written % knobs.batch == 0:
            await asyncio.gather(*pending)  # raises if the broker refused one
            pending.clear()
            await telemetry.send("loading", written, f"published {written} records")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), knobs.pause_s)
    await asyncio.gather(*pending)

    if stop.is_set():
        await telemetry.send("interrupted", written, "stopped by command", finished=True)
        return 0
    if knobs.fail_after is not None and written >= knobs.fail_after:
        error = f"fatal: exchange download failed after {written} records"
        await telemetry.send("error", written, error, finished=True, error_message=error)
        await telemetry.send("finished", written, "loader finished with an error", finished=True)
        return 1
    await telemetry.send("finished", written, f"published {written} records", finished=True)
    return 0


async def load_or_fail(
    settings: Settings,
    knobs: Knobs,
    producer: AIOKafkaProducer,
    telemetry: Telemetry,
    stop: asyncio.Event,
) -> int:
    """``load``, with an unexpected failure (Kafka gone...) reported as a fatal error."""
    try:
        return await load(settings, knobs, producer, telemetry, stop)
    except Exception as exc:
        error = f"fatal: {type(exc).__name__}: {exc}"
        log(NAME, error)
        with contextlib.suppress(Exception):
            await telemetry.send("error", 0, error, finished=True, error_message=error)
            await telemetry.send("finished", 0, "loader finished with an error", finished=True)
        return 1


async def answer_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n")
        writer.write(b"Connection: close\r\n\r\nok")
        await writer.drain()
    writer.close()


async def main() -> int:
    try:
        settings = Settings.from_env(default_type="api_candles_1m")
        knobs = Knobs.from_env()
        producer_kwargs = kafka_kwargs("PRODUCER")
        kafka_kwargs("CONSUMER")  # the control listener's credentials: checked at start-up too
        if not settings.data_topic:
            raise ConfigError("KAFKA_TOPIC is not set")
    except ConfigError as exc:
        log(NAME, f"fatal: {exc}")
        return 1

    terminate = asyncio.Event()  # SIGTERM or SIGINT: exit 0, without a report
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, terminate.set)
    producer = AIOKafkaProducer(acks="all", **producer_kwargs)
    await producer.start()
    telemetry = Telemetry(producer, settings)
    if not TYPE_RE.fullmatch(settings.type):
        error = f"unsupported TYPE: {settings.type}"
        log(NAME, f"fatal: {error}")
        try:
            await telemetry.send("error", 0, error, finished=True, error_message=error)
            await telemetry.send("finished", 0, "loader finished with an error", finished=True)
        finally:
            await stop_quietly(producer)
        return 1

    server = await asyncio.start_server(answer_http, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    log(NAME, f"serving HTTP on http://{host}:{port}")

    control = await start_group_consumer(
        settings.control_topic, f"control-listener-{settings.queue_id}", NAME
    )
    stop = asyncio.Event()
    loading = asyncio.create_task(load_or_fail(settings, knobs, producer, telemetry, stop))

    def on_stop() -> None:
        if loading.done():
            log(NAME, "stop ignored: the loader has already reported its end")
        else:
            stop.set()

    listener = asyncio.create_task(listen_for_stop(control, settings.queue_id, on_stop, NAME))
    terminated = asyncio.create_task(terminate.wait())
    code = 0
    try:
        if knobs.hold:
            await terminated
        else:
            await asyncio.wait({terminated, loading}, return_when=asyncio.FIRST_COMPLETED)
            if loading.done():
                code = loading.result()
    finally:
        for task in (loading, listener, terminated):
            task.cancel()
        server.close()
        await stop_quietly(control, producer)
    log(NAME, f"exiting ({code})")
    return code


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
