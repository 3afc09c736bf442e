"""How the platform's own workers report (docs/worker-protocol.md), applied by the domain:
unkeyed reports read out of order, `error` with `finished: false`, `error` then `finished`."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter

from queue_manager.domain import planner, state
from queue_manager.domain.history import EventKind
from queue_manager.domain.models import QueueState, QueueStatus, StepStatus
from queue_manager.domain.requests import StartRequest
from queue_manager.domain.telemetry import Source, TelemetryEvent, parse

QID = "0f9d6c1e-7c1b-4c9e-9a0e-2f4b8f1d2a3c"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW = 2.0


def plan(body: dict[str, Any]) -> QueueState:
    queue = planner.plan(TypeAdapter(StartRequest).validate_python(body), QID)
    state.claim_ready(queue, T0)
    return queue


class Worker:
    """One worker's reports, each sent a millisecond after the one before."""

    def __init__(self, queue: QueueState, index: int) -> None:
        self.producer = queue.steps[index].telemetry_id
        self.sent = T0

    def report(self, status: str, records: int, **fields: Any) -> TelemetryEvent:
        self.sent += timedelta(milliseconds=1)
        body = {
            "event": status,
            "queue_id": QID,
            "producer": self.producer,
            "records_written": records,
            "sent_at": self.sent.isoformat(),
            **fields,
        }
        return parse(body, Source.EVENTS)


def apply_in_batches(
    queue: QueueState, batches: list[list[TelemetryEvent]], window: float = WINDOW
) -> QueueState:
    """As the dispatcher does, then once the reorder window has passed (the step watch)."""
    for batch in batches:
        state.apply_telemetry_batch(queue, batch, T0, window)
    state.settle(queue, T0, state.release_endings(queue, T0 + timedelta(seconds=window), window))
    return queue


def step_state(queue: QueueState, index: int) -> dict[str, Any]:
    step = queue.steps[index]
    return {
        "status": step.status,
        "records_written": step.records_written,
        "error_message": step.error_message,
        "warnings": step.warnings,
        "last_warning": step.last_warning,
        "ending": step.ending,
        "queue": queue.status,
        "queue_error": queue.error_message,
    }


def test_error_not_finished_is_a_warning_and_the_connector_goes_on(
    historical: dict[str, Any],
) -> None:
    queue = plan(historical)
    connector = Worker(queue, 2)
    bad = connector.report(
        "error", 40, finished=False, error_message="cannot store record at offset 41: not JSON"
    )
    outcome, _ = state.apply_telemetry_batch(
        queue, [connector.report("started", 0), connector.report("loading", 40), bad], T0
    )
    step = queue.steps[2]
    assert step.status is StepStatus.LOADING
    assert (step.warnings, step.last_warning) == (1, "cannot store record at offset 41: not JSON")
    assert queue.status is QueueStatus.LOADING and queue.error_message is None
    warnings = [e for e in outcome.events if e.kind is EventKind.STEP_WARNING]
    assert [(e.step, e.message) for e in warnings] == [(2, step.last_warning)]
    # Redelivered (at least once): counted once.
    outcome, _ = state.apply_telemetry_batch(queue, [bad], T0)
    assert step.warnings == 1 and not outcome.events
    state.apply_telemetry_batch(queue, [connector.report("loading", 99)], T0)
    assert step.status is StepStatus.LOADING and step.records_written == 99


def test_error_without_finished_still_ends_the_step(single: dict[str, Any]) -> None:
    """Our SDK's `error` has no `finished` field: it ends the step, as it always did."""
    queue = plan(single)
    worker = Worker(queue, 0)
    state.apply_telemetry_batch(queue, [worker.report("error", 5, error_message="boom")], T0)
    assert queue.steps[0].status is StepStatus.ERROR
    assert queue.status is QueueStatus.ERROR


def test_a_fatal_loader_error_followed_by_finished_fails_the_step_in_either_arrival_order(
    single: dict[str, Any],
) -> None:
    for order in ([0, 1], [1, 0]):
        queue = plan(single)
        worker = Worker(queue, 0)
        reports = [
            worker.report("error", 30, finished=True, error_message="fatal: download failed"),
            worker.report("finished", 30, finished=True),
        ]
        apply_in_batches(queue, [[reports[order[0]]], [reports[order[1]]]])
        assert queue.steps[0].status is StepStatus.ERROR, order
        assert queue.error_message == "step 0 (loader-producer) failed: fatal: download failed"


def test_a_held_terminal_report_waits_for_the_reorder_window(single: dict[str, Any]) -> None:
    queue = plan(single)
    worker = Worker(queue, 0)
    state.apply_telemetry_batch(queue, [worker.report("finished", 10, finished=True)], T0, WINDOW)
    assert queue.steps[0].status is StepStatus.LAUNCHING
    assert queue.steps[0].ending is not None
    assert state.pending_release(queue) == T0
    assert not state.release_endings(queue, T0 + timedelta(seconds=1), WINDOW).changed
    state.release_endings(queue, T0 + timedelta(seconds=WINDOW), WINDOW)
    assert queue.steps[0].status is StepStatus.FINISHED
    assert state.pending_release(queue) is None


def _loader_reports(worker: Worker, rng: random.Random) -> list[TelemetryEvent]:
    records = 0
    reports = [worker.report("started", 0, finished=False)]
    for _ in range(rng.randrange(0, 8)):
        records += rng.randrange(1, 100)
        reports.append(worker.report("loading", records, finished=False))
    match rng.choice(["finished", "fatal", "stopped"]):
        case "finished":
            reports.append(worker.report("finished", records, finished=True))
        case "fatal":
            reports.append(worker.report("error", records, finished=True, error_message="fatal"))
            reports.append(worker.report("finished", records, finished=True))
        case _:
            reports.append(worker.report("interrupted", records, finished=True))
    return reports


def _connector_reports(worker: Worker, rng: random.Random) -> list[TelemetryEvent]:
    records = 0
    reports = [worker.report("started", 0, finished=False)]
    for n in range(rng.randrange(1, 10)):
        if rng.random() < 0.3:
            reports.append(
                worker.report("error", records, finished=False, error_message=f"bad record {n}")
            )
        records += rng.randrange(1, 100)
        reports.append(worker.report("loading", records, finished=False))
    if rng.random() < 0.5:
        reports.append(worker.report("interrupted", records, finished=True))
        reports.append(worker.report("finished", records, finished=True))
    return reports


def _random_batches(
    reports: list[TelemetryEvent], rng: random.Random
) -> list[list[TelemetryEvent]]:
    """Three partitions, each in order, read in whatever order the fetches return them."""
    partitions: list[list[TelemetryEvent]] = [[], [], []]
    for report in reports:
        partitions[rng.randrange(3)].append(report)
    batches: list[list[TelemetryEvent]] = []
    while any(partitions):
        batch: list[TelemetryEvent] = []
        for partition in rng.sample(partitions, 3):
            take = rng.randrange(0, len(partition) + 1)
            batch += partition[:take]
            del partition[:take]
        if batch:
            batches.append(batch)
    return batches


def test_one_workers_reports_shuffled_over_three_partitions_end_as_in_order(
    historical: dict[str, Any],
) -> None:
    rng = random.Random(26)
    for run in range(300):
        index, make = rng.choice([(0, _loader_reports), (2, _connector_reports)])
        in_order = plan(historical)
        reports = make(Worker(in_order, index), rng)
        shuffled = in_order.model_copy(deep=True)
        apply_in_batches(in_order, [[r] for r in reports])
        apply_in_batches(shuffled, _random_batches(list(reports), rng))
        assert step_state(shuffled, index) == step_state(in_order, index), (run, reports)


def test_the_fold_without_a_window_is_unchanged_by_holding(single: dict[str, Any]) -> None:
    """HTTP and the in-process bus deliver in order: a terminal report applies at once."""
    queue = plan(single)
    worker = Worker(queue, 0)
    state.apply_telemetry_batch(
        queue, [worker.report("finished", 10), worker.report("loading", 11)], T0
    )
    assert queue.steps[0].status is StepStatus.FINISHED
    assert queue.steps[0].records_written == 11


def test_a_drained_connector_finishes_with_the_reason_in_its_history(
    historical: dict[str, Any],
) -> None:
    queue = plan(historical)
    outcome = state.drained(queue, 2, "its producers finished", T0)
    assert queue.steps[2].status is StepStatus.FINISHED
    finished = [e for e in outcome.events if e.kind is EventKind.STEP_STATUS]
    assert finished[-1].message == "drained: its producers finished"
    assert not state.drained(queue, 2, "again", T0).changed
