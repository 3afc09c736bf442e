"""Baseline: a bare FastAPI app on the same uvicorn, doing only what a benchmark compares against.

- `GET /ready`, `GET /hello`: the idle/start-up baseline (P7).
- `GET /queues/{id}`: answers the JSON document in the file `BARE_DOC` (P5): the same bytes the
  service answers, parsed once at start-up and serialised per request like any FastAPI handler.
- `WS /ws/topic` + `POST /publish`: the minimal correct fan-out (a bounded queue and a sender task
  per client, slow clients dropped) for P6.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, WebSocket
from fastapi.responses import Response

app = FastAPI()
DOC: Any = (
    orjson.loads(Path(os.environ["BARE_DOC"]).read_bytes()) if os.environ.get("BARE_DOC") else {}
)
CLIENTS: set[asyncio.Queue[bytes]] = set()
TASKS: set[asyncio.Task[None]] = set()


@app.get("/ready")
async def ready() -> dict[str, str]:
    return {"status": "success"}


@app.get("/hello")
async def hello() -> dict[str, str]:
    return {"hello": "world"}


@app.get("/queues/{queue_id}")
async def show(queue_id: str) -> Any:
    return DOC


@app.websocket("/ws/topic")
async def topic(socket: WebSocket) -> None:
    await socket.accept()
    outbox: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1000)
    CLIENTS.add(outbox)

    async def reader() -> None:
        with contextlib.suppress(Exception):
            while True:
                await socket.receive_text()

    reading = asyncio.create_task(reader())
    try:
        while not reading.done():
            get = asyncio.ensure_future(outbox.get())
            done, _ = await asyncio.wait({get, reading}, return_when=asyncio.FIRST_COMPLETED)
            if get not in done:
                get.cancel()
                break
            await socket.send_text(get.result().decode())
    except Exception:
        pass
    finally:
        CLIENTS.discard(outbox)
        reading.cancel()


@app.post("/publish")
async def publish(rate: float, seconds: float, t_base: float) -> dict[str, int]:
    """Broadcast `rate` messages/s for `seconds` to every client (like step.updated)."""

    async def loop() -> None:
        start = time.perf_counter()
        n = 0
        total = int(rate * seconds)
        while n < total:
            due = start + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            rw = int((time.time() - t_base) * 1e6)
            payload = orjson.dumps(
                {
                    "event": "step.updated" if n % 2 == 0 else "queue.updated",
                    "queue_id": f"bare-{n % 100}",
                    "step": 0,
                    "target": "loader-producer",
                    "type": "api_candles_5m",
                    "status": "loading",
                    "records_written": rw,
                    "last_loaded_timestamp": None,
                    "error_message": None,
                    "updated_at": "2026-01-01T00:00:00+00:00",
                    "text": f"Queue bare-{n % 100} step 0 loader-producer → loading ({rw} records)",
                }
            )
            for outbox in list(CLIENTS):
                try:
                    outbox.put_nowait(payload)
                except asyncio.QueueFull:
                    CLIENTS.discard(outbox)
            n += 1

    task = asyncio.create_task(loop())
    TASKS.add(task)
    task.add_done_callback(TASKS.discard)
    return {"clients": len(CLIENTS)}


@app.get("/clients")
async def clients() -> Response:
    return Response(orjson.dumps({"clients": len(CLIENTS)}), media_type="application/json")
