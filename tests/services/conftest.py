"""Engine, Dispatcher and Reconciler in-process: a real SQLite file and the in-process bus, with
a launcher that records what it is asked (the services' unit is the engine, not a launcher)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import TypeAdapter

from queue_manager.adapters.memory_bus import MemoryBus
from queue_manager.adapters.sqlite_store import SQLiteStore
from queue_manager.domain.errors import LaunchFailed
from queue_manager.domain.models import QueueState
from queue_manager.domain.requests import StartRequest
from queue_manager.job_contract import TARGETS
from queue_manager.observability.metrics import Metrics
from queue_manager.ports import JobPhase, JobSpec, JobStatus
from queue_manager.services.backfills import BackfillService
from queue_manager.services.engine import Engine
from queue_manager.services.job_events import JobEvents
from queue_manager.services.job_specs import JobConfig
from queue_manager.services.queues import QueueService
from queue_manager.services.reconciler import Reconciler
from queue_manager.services.step_watch import StepWatch
from queue_manager.services.stop_deadlines import StopDeadlines
from queue_manager.services.telemetry import Dispatcher
from tests.support.clocks import ManualClock


class RecordingLauncher:
    """The Launcher port as a list of jobs this test controls."""

    name = "recording"

    def __init__(self) -> None:
        self.launched: list[JobSpec] = []
        self.deleted: list[str] = []
        self.jobs: dict[str, JobStatus] = {}
        self.refuse: set[str] = set()
        #: launches, in order with the data topics' calls (RecordingTopics)
        self.calls: list[tuple[str, ...]] = []

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def ping(self) -> None: ...

    async def launch(self, spec: JobSpec) -> None:
        if spec.target in self.refuse:
            raise LaunchFailed(f"{spec.target} refused by the test")
        self.calls.append(("launch", spec.target))
        self.launched.append(spec)
        self.jobs[spec.name] = JobStatus(spec.name, spec.queue_id, spec.step_index, JobPhase.ACTIVE)

    async def delete(self, name: str) -> None:
        self.deleted.append(name)
        self.jobs.pop(name, None)

    async def list_jobs(self) -> list[JobStatus]:
        return list(self.jobs.values())

    async def watch(self) -> AsyncIterator[JobStatus]:
        await asyncio.Event().wait()
        yield  # never reached: these tests drive the engine directly

    def targets(self) -> list[str]:
        return [spec.target for spec in self.launched]


class RecordingTopics:
    """The DataTopics port as a log of calls and lags this test sets."""

    def __init__(self, calls: list[tuple[str, ...]]) -> None:
        self.calls = calls
        self.lag: dict[str, int] = {}
        #: set by a test (`hold`): the next positionings wait for it, as on a broker that
        #: answers slowly, and say so in `held`; later ones go through
        self.gate = asyncio.Event()
        self.held = asyncio.Event()
        self._holding = 0

    def hold(self, calls: int) -> None:
        self._holding = calls

    async def position_group(self, topic: str, group: str, *, at_end: bool) -> None:
        if self._holding > 0:
            self._holding -= 1
            self.held.set()
            await self.gate.wait()
        self.calls.append(("position", topic, group, "end" if at_end else "start"))

    async def group_lag(self, topic: str, group: str) -> int | None:
        return self.lag.get(topic)


class Updates:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def publish(self, update: dict[str, Any]) -> None:
        self.sent.append(update)


@dataclass
class Services:
    store: SQLiteStore
    bus: MemoryBus
    launcher: RecordingLauncher
    updates: Updates
    #: the services' one clock: a test moves it instead of backdating stored rows
    clock: ManualClock
    metrics: Metrics
    engine: Engine
    job_events: JobEvents
    deadlines: StopDeadlines
    queues: QueueService
    backfills: BackfillService
    dispatcher: Dispatcher
    reconciler: Reconciler
    topics: RecordingTopics
    step_watch: StepWatch
    commands: list[dict[str, Any]] = field(default_factory=list)

    async def start(self, body: dict[str, Any]) -> QueueState:
        request = TypeAdapter(StartRequest).validate_python(body)
        return await self.queues.start(request)

    async def report(self, queue: QueueState, index: int, event: str, **extra: Any) -> None:
        """One worker report through the bus and the dispatcher, as in production."""
        body = {
            "event": event,
            "queue_id": queue.id,
            "producer": queue.steps[index].telemetry_id,
            **extra,
        }
        await self.bus.send_telemetry(orjson.dumps(body))
        await self.drain()

    async def drain(self) -> None:
        """Apply everything waiting on the bus as one batch; keep the commands for the test."""
        async with contextlib.aclosing(self.bus.batches()) as batches:  # type: ignore[type-var]
            batch = await anext(batches)
        for value in (v for _, values in batch.parts for v in values):
            body = orjson.loads(value)
            if "command" in body:
                self.commands.append(body)
        await self.dispatcher.handle(batch)

    async def get(self, queue_id: str) -> QueueState:
        return await self.queues.get(queue_id)


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    store = SQLiteStore(tmp_path / "queues.db")
    await store.open()
    bus = MemoryBus()
    await bus.start()
    launcher = RecordingLauncher()
    updates = Updates()
    topics = RecordingTopics(launcher.calls)
    clock = ManualClock()
    metrics = Metrics()
    engine = Engine(
        store=store,
        bus=bus,
        launcher=launcher,
        broadcaster=updates,
        metrics=metrics,
        clock=clock,
        jobs=JobConfig(images={t: f"registry.example/{t}:1" for t in TARGETS}),
        topics=topics,
    )
    deadlines = StopDeadlines(engine, store=store, clock=clock)
    job_events = JobEvents(engine, store=store, metrics=metrics, clock=clock)
    stop_grace = timedelta(seconds=30)
    queues = QueueService(
        engine,
        deadlines,
        store=store,
        bus=bus,
        metrics=metrics,
        clock=clock,
        stop_grace=stop_grace,
    )
    yield Services(
        store=store,
        bus=bus,
        launcher=launcher,
        updates=updates,
        clock=clock,
        metrics=metrics,
        engine=engine,
        job_events=job_events,
        deadlines=deadlines,
        queues=queues,
        backfills=BackfillService(
            queues, engine, store=store, bus=bus, clock=clock, stop_grace=stop_grace
        ),
        dispatcher=Dispatcher(engine, bus=bus, metrics=metrics, clock=clock),
        reconciler=Reconciler(
            engine,
            job_events,
            deadlines,
            store=store,
            launcher=launcher,
            clock=clock,
            launch_grace=timedelta(seconds=30),
            period=60,
        ),
        topics=topics,
        step_watch=StepWatch(
            engine,
            store=store,
            metrics=metrics,
            clock=clock,
            topics=topics,
            period=60,
            window=0.0,
            quiet=0.0,
        ),
    )
    await deadlines.close()
    await bus.stop()
    await store.close()
