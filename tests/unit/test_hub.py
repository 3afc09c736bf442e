"""The WebSocket hub: a client that reads slowly (or not at all) never delays the others nor the
publisher, gets the latest value of every key, and is closed only when it reads nothing for
`idle` seconds or falls more than `buffer` keys behind."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson

from queue_manager.api.hub import MAX_PER_FRAME, Hub
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
    """Stands in for a network peer; while `stalled`, a send does not complete (a full TCP
    window) until `release()`."""

    def __init__(self, activity: Activity, stalled: bool = False) -> None:
        self.activity = activity
        self.received: list[str] = []
        self.closed_with: int | None = None
        self._answers: asyncio.Queue[str | None] = asyncio.Queue()
        self._flowing = asyncio.Event()
        if not stalled:
            self._flowing.set()

    def release(self) -> None:
        self._flowing.set()

    async def accept(self) -> None:
        self.activity.pulse()

    async def send_text(self, text: str) -> None:
        await self._flowing.wait()
        self.received.append(text)
        self.activity.pulse()

    async def receive(self) -> dict[str, Any]:
        """What the peer sent: its answers (`answer()`), then the disconnect (None)."""
        text = await self._answers.get()
        if text is None:
            return {"type": "websocket.disconnect", "code": 1000}
        return {"type": "websocket.receive", "text": text}

    def answer(self, text: str = "ack") -> None:
        self._answers.put_nowait(text)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed_with = code
        self._answers.put_nowait(None)
        self.activity.pulse()

    def updates(self) -> list[dict[str, Any]]:
        """Every update received, frames that are arrays flattened, heartbeats left out."""
        out: list[dict[str, Any]] = []
        for text in self.received:
            value = orjson.loads(text)
            for update in value if isinstance(value, list) else [value]:
                if update.get("event") != "heartbeat":
                    out.append(update)
        return out


def queue_update(queue_id: str, status: str, n: int = 0) -> dict[str, Any]:
    return {"event": "queue.updated", "queue_id": queue_id, "status": status, "n": n}


def step_update(queue_id: str, step: int, n: int) -> dict[str, Any]:
    return {"event": "step.updated", "queue_id": queue_id, "step": step, "n": n}


async def stop(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def conflated(metrics: Metrics) -> float:
    value = metrics.registry.get_sample_value("queue_manager_websocket_updates_conflated_total")
    return value or 0.0


async def test_a_slow_client_stays_connected_and_ends_with_the_latest_of_every_key() -> None:
    metrics = Metrics()
    hub = Hub(metrics, heartbeat=15, buffer=1000, flush=0.01)
    activity = Activity()
    slow, fast = Socket(activity, stalled=True), Socket(activity)
    tasks = [asyncio.create_task(hub.serve(s, None)) for s in (slow, fast)]  # type: ignore[arg-type]
    await activity.until(lambda: hub.clients == 2)
    queues = [f"q{i}" for i in range(20)]
    for n in range(50):
        for q in queues:
            # publish never waits for a client: it is a plain call, whoever is stalled
            hub.publish(step_update(q, 0, n))
            hub.publish(queue_update(q, "loading", n))
        await asyncio.sleep(0.002)
    for q in queues:
        hub.publish(step_update(q, 0, 50))
        hub.publish(queue_update(q, "finished", 50))  # terminal: must reach every client

    def last(sock: Socket) -> dict[tuple[Any, Any, Any], dict[str, Any]]:
        latest = {}
        for u in sock.updates():
            latest[(u["event"], u["queue_id"], u.get("step"))] = u
        return latest

    def complete(sock: Socket) -> bool:
        got = last(sock)
        return len(got) == 40 and all(u["n"] == 50 for u in got.values())

    await activity.until(lambda: complete(fast))
    assert slow.received == [] and hub.clients == 2  # stalled, yet still connected
    slow.release()
    await activity.until(lambda: complete(slow))
    assert slow.closed_with is None and hub.clients == 2
    for sock in (slow, fast):
        statuses = {u["queue_id"]: u["status"] for u in sock.updates()
                    if u["event"] == "queue.updated"}
        assert statuses == dict.fromkeys(queues, "finished")
        # per key the values only move forward, and different keys keep their order
        for key in last(sock):
            ns = [u["n"] for u in sock.updates()
                  if (u["event"], u["queue_id"], u.get("step")) == key]
            assert ns == sorted(set(ns)), (key, ns)
    # the slow one skipped most of the 2,040 updates; the skipped ones are counted
    assert len(slow.updates()) < 200
    skipped = conflated(metrics)
    assert skipped >= 2040 - len(slow.updates())
    assert skipped == 2 * 2040 - len(slow.updates()) - len(fast.updates())
    await stop(tasks)


async def test_batch_frames_are_arrays_of_the_same_updates() -> None:
    hub = Hub(Metrics(), heartbeat=15, buffer=10_000, flush=0.01)
    activity = Activity()
    single, batched = Socket(activity), Socket(activity)
    tasks = [
        asyncio.create_task(hub.serve(single, None)),  # type: ignore[arg-type]
        asyncio.create_task(hub.serve(batched, None, batch=True)),  # type: ignore[arg-type]
    ]
    await activity.until(lambda: hub.clients == 2)
    total = MAX_PER_FRAME + 100  # distinct keys: nothing to conflate, more than one frame
    for n in range(total):
        hub.publish(step_update("q", n, n))
    await activity.until(lambda: len(single.updates()) == total and
                         len(batched.updates()) == total)
    assert all(isinstance(orjson.loads(m), dict) for m in single.received)
    frames = [orjson.loads(m) for m in batched.received]
    assert all(isinstance(f, list) for f in frames)
    assert len(frames) >= 2 and max(len(f) for f in frames) == MAX_PER_FRAME
    assert batched.updates() == single.updates() == [step_update("q", n, n) for n in range(total)]
    await stop(tasks)


async def test_a_client_that_reads_nothing_is_closed_with_1013_after_idle_seconds() -> None:
    metrics = Metrics()
    hub = Hub(metrics, heartbeat=15, buffer=1000, idle=0.3, flush=0.01)
    activity = Activity()
    stuck, fine = Socket(activity, stalled=True), Socket(activity)
    tasks = [asyncio.create_task(hub.serve(s, None)) for s in (stuck, fine)]  # type: ignore[arg-type]
    await activity.until(lambda: hub.clients == 2)
    hub.publish(queue_update("q", "loading"))
    await activity.until(lambda: len(fine.received) == 1)
    await asyncio.sleep(0.1)
    assert hub.clients == 2  # blocked for less than idle: kept
    await activity.until(lambda: hub.clients == 1, within=3)
    stuck.release()  # lets the close frame through
    await activity.until(lambda: stuck.closed_with is not None)
    assert stuck.closed_with == 1013
    assert metrics.registry.get_sample_value(
        "queue_manager_websocket_disconnected_total", {"reason": "idle"}) == 1.0
    hub.publish(queue_update("q", "finished"))
    await activity.until(lambda: len(fine.received) == 2)
    assert fine.closed_with is None
    await stop(tasks)


async def test_a_client_more_than_buffer_keys_behind_is_closed() -> None:
    metrics = Metrics()
    hub = Hub(metrics, heartbeat=15, buffer=10, flush=0.01)
    activity = Activity()
    behind, fine = Socket(activity, stalled=True), Socket(activity)
    tasks = [asyncio.create_task(hub.serve(s, None)) for s in (behind, fine)]  # type: ignore[arg-type]
    await activity.until(lambda: hub.clients == 2)
    hub.publish(queue_update("first", "loading"))
    await activity.until(lambda: len(fine.received) == 1)  # `behind` is now stuck sending it
    for n in range(30):  # 30 distinct keys: more than the 10 the log may hold for it
        hub.publish(step_update("q", n, n))
        await asyncio.sleep(0.002)
    await activity.until(lambda: len(fine.updates()) == 31)
    behind.release()
    await activity.until(lambda: behind.closed_with is not None)
    assert behind.closed_with == 1013 and hub.clients == 1
    assert metrics.registry.get_sample_value(
        "queue_manager_websocket_disconnected_total", {"reason": "behind"}) == 1.0
    await stop(tasks)


async def test_queue_filter() -> None:
    metrics = Metrics()
    hub = Hub(metrics, heartbeat=15, buffer=10, flush=0.01)
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
    await asyncio.sleep(0.05)
    assert [orjson.loads(m)["queue_id"] for m in mine.received] == ["a"]
    assert conflated(metrics) == 0
    await stop(tasks)


async def test_heartbeat_on_an_idle_socket() -> None:
    hub = Hub(Metrics(), heartbeat=0.05, buffer=10)
    activity = Activity()
    idle, batched = Socket(activity), Socket(activity)
    tasks = [
        asyncio.create_task(hub.serve(idle, None)),  # type: ignore[arg-type]
        asyncio.create_task(hub.serve(batched, None, batch=True)),  # type: ignore[arg-type]
    ]
    await activity.until(lambda: len(idle.received) >= 2 and len(batched.received) >= 2)
    assert all(orjson.loads(m) == {"event": "heartbeat"} for m in idle.received)
    assert all(orjson.loads(m) == [{"event": "heartbeat"}] for m in batched.received)
    await stop(tasks)


async def test_non_ascii_is_escaped_but_the_same_json() -> None:
    hub = Hub(Metrics(), heartbeat=15, buffer=10, flush=0.01)
    activity = Activity()
    sock = Socket(activity)
    task = asyncio.create_task(hub.serve(sock, None))  # type: ignore[arg-type]
    await activity.until(lambda: hub.clients == 1)
    update = {"event": "queue.updated", "queue_id": "q", "text": "Queue q → finished (3 records)"}
    hub.publish(update)
    await activity.until(lambda: len(sock.received) == 1)
    assert sock.received[0].isascii() and orjson.loads(sock.received[0]) == update
    await stop([task])


async def test_with_acks_nothing_more_is_sent_until_the_frame_is_answered() -> None:
    """`?ack=1`: one frame in flight; what is published meanwhile waits here and conflates, so
    the next frame carries only the latest value of each key, the terminal status included."""
    metrics = Metrics()
    hub = Hub(metrics, heartbeat=15, buffer=1000, flush=0.01)
    activity = Activity()
    sock = Socket(activity)
    task = asyncio.create_task(hub.serve(sock, None, batch=True, ack=True))  # type: ignore[arg-type]
    await activity.until(lambda: hub.clients == 1)
    hub.publish(queue_update("q", "loading", 0))
    await activity.until(lambda: len(sock.received) == 1)
    for n in range(1, 100):
        hub.publish(step_update("q", 0, n))
        hub.publish(queue_update("q", "loading", n))
    hub.publish(queue_update("q", "finished", 100))
    await asyncio.sleep(0.1)  # ten flushes: none may send while the first frame is unanswered
    assert len(sock.received) == 1 and hub.clients == 1
    sock.answer()
    await activity.until(lambda: len(sock.received) == 2)
    assert orjson.loads(sock.received[1]) == [step_update("q", 0, 99),
                                              queue_update("q", "finished", 100)]
    assert conflated(metrics) == 2 * 99 + 1 - 2
    sock.answer()
    hub.publish(queue_update("r", "loading", 1))  # answered: the next one flows at once
    await activity.until(lambda: len(sock.received) == 3)
    await stop([task])


async def test_a_client_that_never_answers_is_closed_with_1013_after_idle_seconds() -> None:
    metrics = Metrics()
    hub = Hub(metrics, heartbeat=15, buffer=1000, idle=0.3, flush=0.01)
    activity = Activity()
    mute, answering = Socket(activity), Socket(activity)
    tasks = [asyncio.create_task(hub.serve(s, None, batch=True, ack=True))  # type: ignore[arg-type]
             for s in (mute, answering)]
    await activity.until(lambda: hub.clients == 2)
    loop = asyncio.get_running_loop()
    began = loop.time()
    for n in range(8):
        hub.publish(queue_update("q", "loading", n))
        latest = [queue_update("q", "loading", n)]
        await activity.until(lambda latest=latest: answering.updates()[-1:] == latest)  # type: ignore[misc]
        answering.answer()
        await asyncio.sleep(0.05)
    await activity.until(lambda: mute.closed_with is not None, within=3)
    assert mute.closed_with == 1013 and loop.time() - began >= 0.3
    assert len(mute.received) == 1  # it read its one frame, but answered nothing
    assert answering.closed_with is None and hub.clients == 1
    assert metrics.registry.get_sample_value(
        "queue_manager_websocket_disconnected_total", {"reason": "idle"}) == 1.0
    await stop(tasks)
