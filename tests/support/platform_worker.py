"""A worker written the way the platform's StreamForge workers are (docs/worker-protocol.md), for
compatibility
tests: it knows nothing of queue-manager's SDK, only its environment and the Kafka protocol."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


async def main() -> int:
    queue_id = os.environ["QUEUE_ID"]
    producer_id = os.environ["TELEMETRY_PRODUCER_ID"]
    servers = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    events = os.environ["QUEUE_EVENTS_TOPIC"]
    control = os.environ["QUEUE_CONTROL_TOPIC"]
    ticks = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    producer = AIOKafkaProducer(bootstrap_servers=servers)
    consumer = AIOKafkaConsumer(
        control,
        bootstrap_servers=servers,
        group_id=f"worker-{queue_id}",
        auto_offset_reset="latest",
    )
    await producer.start()
    await consumer.start()

    async def send(event: str, records: int, finished: bool = False) -> None:
        body = {
            "event": event,
            "queue_id": queue_id,
            "producer": producer_id,
            "records_written": records,
            "finished": finished,
            "message": f"{event} {records}",
            "sent_at": datetime.now(UTC).isoformat(),
            "user": "loader",
            "url": "http://x",
        }
        await producer.send_and_wait(events, orjson.dumps(body), key=queue_id.encode())

    try:
        await send("started", 0)
        for n in range(1, ticks + 1):
            records = await consumer.getmany(timeout_ms=300)
            for batch in records.values():
                for record in batch:
                    command = orjson.loads(record.value or b"{}")
                    if command.get("command") == "stop" and command.get("queue_id") == queue_id:
                        await send("interrupted", n * 10)
                        return 0
            await send("loading", n * 10)
        await send("finished", ticks * 10, finished=True)
        return 0
    finally:
        await consumer.stop()
        await producer.stop()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
