"""A WebSocket client that never reads must not delay the others nor the publisher."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson

from queue_manager.api.hub import Hub
from queue_manager.observability.metrics import Metrics


class Activity:
    """Wakes a waiting test whenever a fake socket is accepted, written to or closed."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def pulse(self) -> None:
        self._event.set()

    async def until(self, condition: Callable[[], bool], within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while not condition():
                self._event.clear()
                await self._event.wait()


class Socket:
    """Stands in for a network peer; `stalled` never completes a send, like a full TCP window."""

    def __init__(self, activity: Activity, stalled: bool = False) -> None:
        self.activity = activity
        self.stalled = stalled
        self.received: list[str] = []
        self.closed_with: int | None = None
        self._disconnect = asyncio.Event()

    async def accept(self) -> None:
        self.activity.pulse()

    async def send_text(self, text: str) -> None:
        if self.stalled:
            await asyncio.Event().wait()
        self.received.append(text)
        self.activity.pulse()

    async def receive_text(self) -> str:
        await self._disconnect.wait()
        raise RuntimeError("disconnected")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed_with = code
        self._disconnect.set()
        self.activity.pulse()


async def test_slow_client_is_dropped_and_never_delays_the_others() -> None:
    metrics = Metrics()
    hub = Hub(metrics, heartbeat=15, buffer=50)
    activity = Activity()
    slow, fast = Socket(activity, stalled=True), Socket(activity)
    tasks = [asyncio.create_task(hub.serve(s, None)) for s in (slow, fast)]  # type: ignore[arg-type]
    await activity.until(lambda: hub.clients == 2)
    for n in range(200):
        # publish never waits for a client: it is a plain call, whoever is stalled
        hub.publish({"event": "queue.updated", "queue_id": "q", "n": n})
        await asyncio.sleep(0)  # one turn of the loop, as a real publisher's caller gives
    await activity.until(lambda: len(fast.received) == 200 and slow.closed_with is not None)
    assert [orjson.loads(m)["n"] for m in fast.received] == list(range(200))
    assert slow.closed_with == 1013
    assert hub.clients == 1  # the stalled one was disconnected
    fast_socket: Any = fast
    await fast_socket.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_queue_filter() -> None:
    hub = Hub(Metrics(), heartbeat=15, buffer=10)
    activity = Activity()
    mine, all_ = Socket(activity), Socket(activity)
    tasks = [
        asyncio.create_task(hub.serve(mine, "a")),  # type: ignore[arg-type]
        asyncio.create_task(hub.serve(all_, None)),  # type: ignore[arg-type]
    ]
    await activity.until(lambda: hub.clients == 2)
    hub.publish({"queue_id": "a"})
    hub.publish({"queue_id": "b"})
    await activity.until(lambda: len(all_.received) == 2)
    # published before "b", so had it passed the filter it would have arrived by now
    assert [orjson.loads(m)["queue_id"] for m in mine.received] == ["a"]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_heartbeat_on_an_idle_socket() -> None:
    hub = Hub(Metrics(), heartbeat=0.05, buffer=10)
    activity = Activity()
    idle = Socket(activity)
    task = asyncio.create_task(hub.serve(idle, None))  # type: ignore[arg-type]
    await activity.until(lambda: len(idle.received) >= 2)
    assert all('"heartbeat"' in m for m in idle.received)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
