"""A WebSocket client that never reads must not delay the others nor the publisher."""

from __future__ import annotations

import asyncio
from typing import Any

from queue_manager.api.hub import Hub
from queue_manager.observability.metrics import Metrics


class Socket:
    """Stands in for a network peer; `stalled` never completes a send, like a full TCP window."""

    def __init__(self, stalled: bool = False) -> None:
        self.stalled = stalled
        self.received: list[str] = []
        self.closed_with: int | None = None
        self._disconnect = asyncio.Event()

    async def accept(self) -> None:
        pass

    async def send_text(self, text: str) -> None:
        if self.stalled:
            await asyncio.Event().wait()
        self.received.append(text)

    async def receive_text(self) -> str:
        await self._disconnect.wait()
        raise RuntimeError("disconnected")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed_with = code
        self._disconnect.set()


async def test_slow_client_is_dropped_and_never_delays_the_others() -> None:
    metrics = Metrics()
    hub = Hub(metrics, heartbeat=15, buffer=50)
    slow, fast = Socket(stalled=True), Socket()
    tasks = [asyncio.create_task(hub.serve(s, None)) for s in (slow, fast)]  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    started = asyncio.get_running_loop().time()
    for n in range(200):
        hub.publish({"event": "queue.updated", "queue_id": "q", "n": n})
        await asyncio.sleep(0.001)
    publish_time = asyncio.get_running_loop().time() - started
    await asyncio.sleep(0.1)
    assert len(fast.received) == 200
    assert publish_time < 2.0
    assert slow.closed_with == 1013
    assert hub.clients == 1  # the stalled one was disconnected
    fast_socket: Any = fast
    await fast_socket.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_queue_filter() -> None:
    hub = Hub(Metrics(), heartbeat=15, buffer=10)
    mine, all_ = Socket(), Socket()
    tasks = [
        asyncio.create_task(hub.serve(mine, "a")),  # type: ignore[arg-type]
        asyncio.create_task(hub.serve(all_, None)),  # type: ignore[arg-type]
    ]
    await asyncio.sleep(0.05)
    hub.publish({"queue_id": "a"})
    hub.publish({"queue_id": "b"})
    await asyncio.sleep(0.05)
    assert len(mine.received) == 1 and len(all_.received) == 2
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_heartbeat_on_an_idle_socket() -> None:
    hub = Hub(Metrics(), heartbeat=0.05, buffer=10)
    idle = Socket()
    task = asyncio.create_task(hub.serve(idle, None))  # type: ignore[arg-type]
    await asyncio.sleep(0.2)
    assert idle.received and all('"heartbeat"' in m for m in idle.received)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
