"""The dashboard under load: 2,000 queues listed, hundreds of updates a second over the socket,
main-thread long tasks measured in the browser (PerformanceObserver 'longtask').

Shared by tests/ui/test_load.py (a few seconds, in `make test`) and bench/p11_dashboard.py (P11:
longer, reported in BENCHMARKS.md). 1,900 ended queues are stored through SQLiteStore before the
service starts; 100 single-step queues are started through the API, their local workers idle
processes that never report; the driver then sends worker-shaped `loading` reports for those
100, round-robin, into the events topic of the real Kafka broker (tests/support/kafka_broker.py),
as workers do in production.
Each report becomes a `step.updated` and a `queue.updated` on the socket, so 250 reports/s make
500 updates/s. (Over the embedded HTTP telemetry route the service alone tops out near 250
reports/s on two cores, less with Chromium beside it, so it could not offer the rate.)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson
from playwright.sync_api import Page, WebSocket

from queue_manager.adapters.sqlite_store import SQLiteStore
from queue_manager.domain import naming, planner
from queue_manager.domain.models import QueueStatus, StepStatus, Target
from queue_manager.domain.requests import QueueCreate
from tests.support.kafka_broker import KafkaBroker
from tests.support.service import Service, wait_for

T = TypeVar("T")

IDLE_WORKER = "sh -c 'exec sleep 3600'"
ENDED, RUNNING = 1_900, 100
BODY = {"symbol": "BTCUSDT", "type": "api_candles_5m", "time_range": "2024-06-01:2024-06-30"}

#: installed before the page loads: every long task and every animation frame, timestamped
OBSERVE = """
window.__longtasks = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__longtasks.push([e.startTime, e.duration]);
}).observe({type: 'longtask', buffered: true});
window.__frames = [];
const frame = (t) => { window.__frames.push(t); requestAnimationFrame(frame); };
requestAnimationFrame(frame);
"""


def service_env(broker: KafkaBroker) -> dict[str, str]:
    """The service on the broker, with topics and a group of its own."""
    suffix = uuid.uuid4().hex[:8]
    return {
        **broker.client_env(sasl=False),
        "KAFKA_GROUP_ID": f"qm-ui-load-{suffix}",
        "QUEUE_EVENTS_TOPIC": f"events-ui-load-{suffix}",
        "QUEUE_CONTROL_TOPIC": f"control-ui-load-{suffix}",
        "QUEUE_UPDATES_TOPIC": f"updates-ui-load-{suffix}",
        "LOCAL_WORKER_COMMAND": IDLE_WORKER,
        "LAUNCH_GRACE_SECONDS": "600",
        "RECONCILE_SECONDS": "5",
        "LOG_LEVEL": "WARNING",
    }


def seed_ended(db: Path, count: int = ENDED) -> None:
    """`count` finished one-step queues, 1 ms apart, older than anything started later."""

    async def insert() -> None:
        store = SQLiteStore(db)
        await store.open()
        template = planner.plan(QueueCreate.model_validate(BODY), str(uuid.uuid4()))
        t0 = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        try:
            for i in range(count):
                queue = template.model_copy(deep=True)
                queue.id = str(uuid.uuid4())
                queue.created_at = queue.updated_at = t0 + dt.timedelta(milliseconds=i)
                queue.status = QueueStatus.FINISHED
                for step in queue.steps:
                    step.status = StepStatus.FINISHED
                    step.records_written = 1000
                    step.job_name = naming.job_name(queue.id, step.index, step.target)
                    step.telemetry_id = naming.telemetry_id(queue.id, step.index, step.target)
                queue.records_written = 1000
                await store.insert(queue, None)
        finally:
            await store.close()

    db.parent.mkdir(parents=True, exist_ok=True)
    in_thread(insert)


def in_thread(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """asyncio.run in a thread of its own: Playwright's sync API keeps a loop in this one."""
    out: list[T] = []
    runner = threading.Thread(target=lambda: out.append(asyncio.run(main())))
    runner.start()
    runner.join()
    if not out:
        raise RuntimeError("the coroutine failed (see the thread's traceback above)")
    return out[0]


def start_running(service: Service, count: int = RUNNING) -> list[str]:
    ids = [service.start_queue(BODY) for _ in range(count)]
    wait_for(lambda: len(list((service.data_dir / "jobs").glob("*.json"))) >= count, 60)
    return ids


@dataclass
class Figures:
    rows: int
    seconds: float
    reports_sent: int
    updates_received: int
    socket_closed: bool
    load_ms: float
    load_long_tasks: int
    load_long_task_ms: float
    long_tasks: int
    long_task_ms: float
    longest_task_ms: float
    busy_share: float
    frames_per_second: float
    chromium: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def updates_per_second(self) -> float:
        return self.updates_received / self.seconds

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "updates_per_second": self.updates_per_second}


async def _drive(
    broker: KafkaBroker, topic: str, ids: list[str], rate: float, seconds: float
) -> int:
    from aiokafka import AIOKafkaProducer

    producers = {q: naming.telemetry_id(q, 0, Target.LOADER) for q in ids}
    total = int(rate * seconds)
    producer = AIOKafkaProducer(**broker.client_kwargs(sasl=False), linger_ms=5)
    await producer.start()
    try:
        pending = []
        began = time.perf_counter()
        for n in range(total):
            delay = began + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            queue_id = ids[n % len(ids)]
            body = {"event": "loading", "queue_id": queue_id, "producer": producers[queue_id],
                    "records_written": (n // len(ids) + 1) * 10}  # fmt: skip
            pending.append(await producer.send(topic, orjson.dumps(body), key=queue_id.encode()))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return total


def expected_records(ids: list[str], sent: int) -> dict[str, int]:
    """What each queue's row must end showing: the last report of each carried this."""
    last: dict[str, int] = {}
    for n in range(sent):
        last[ids[n % len(ids)]] = (n // len(ids) + 1) * 10
    return last


def measure(
    page: Page,
    service: Service,
    broker: KafkaBroker,
    ids: list[str],
    *,
    rate: float,
    seconds: float,
) -> Figures:
    """Load the list with every queue, then drive `rate` reports/s for `seconds`."""
    received = [0]
    closed = [False]

    def count(payload: str | bytes) -> None:
        # The dashboard asks for ?batch=1: a frame is an array of updates.
        body = orjson.loads(payload)
        received[0] += len(body) if isinstance(body, list) else 1

    def on_socket(socket: WebSocket) -> None:
        socket.on("framereceived", count)
        socket.on("close", lambda _: closed.__setitem__(0, True))

    page.add_init_script(OBSERVE)
    page.on("websocket", on_socket)
    page.goto(f"{service.url}/ui/#/queues?limit=1000")
    page.locator('.queues[data-count="1000"]').wait_for(timeout=60_000)
    page.get_by_role("button", name="Load more").click()
    total = ENDED + len(ids)
    page.locator(f'.queues[data-count="{total}"]').wait_for(timeout=60_000)
    page.locator('#connection[data-state="live"]').wait_for()
    loaded_at: float = page.evaluate("performance.now()")
    received[0] = 0
    t0: float = page.evaluate("performance.now()")
    outcome: dict[str, int] = {}
    topic = service.env["QUEUE_EVENTS_TOPIC"]
    driver = threading.Thread(
        target=lambda: outcome.__setitem__(
            "sent", asyncio.run(_drive(broker, topic, ids, rate, seconds))
        )
    )
    driver.start()
    while driver.is_alive():  # keep Playwright's own events flowing while the driver runs
        page.wait_for_timeout(200)
    driver.join()
    t1: float = page.evaluate("performance.now()")
    sent = outcome["sent"]
    want = expected_records(ids, sent)
    page.wait_for_function(
        """(want) => Object.entries(want).every(([id, n]) => {
             const cell = document.querySelector(`.qrow[data-queue="${id}"] .records`);
             return cell && cell.textContent === n.toLocaleString('en-US');
           })""",
        arg=want,
        timeout=60_000,
    )
    tasks: list[list[float]] = page.evaluate("window.__longtasks")
    frames: list[float] = page.evaluate("window.__frames")
    during = [d for start, d in tasks if t0 <= start <= t1]
    loading = [d for start, d in tasks if start <= loaded_at]
    window = t1 - t0
    return Figures(
        rows=page.locator(".qrow[data-queue]").count(),
        seconds=window / 1000,
        reports_sent=sent,
        updates_received=received[0],
        socket_closed=closed[0],
        load_ms=loaded_at,
        load_long_tasks=len(loading),
        load_long_task_ms=sum(loading),
        long_tasks=len(during),
        long_task_ms=sum(during),
        longest_task_ms=max(during, default=0.0),
        busy_share=sum(during) / window,
        frames_per_second=len([f for f in frames if t0 <= f <= t1]) / (window / 1000),
        chromium=page.context.browser.version if page.context.browser else "",
    )
