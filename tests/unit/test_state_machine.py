"""docs/api.md: forward-only steps, sticky terminal states, growing counters, fail-fast, stop."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter

from queue_manager.domain import history, planner, state
from queue_manager.domain.errors import Conflict
from queue_manager.domain.history import EventKind
from queue_manager.domain.models import QueueState, QueueStatus, StepStatus
from queue_manager.domain.requests import StartRequest
from queue_manager.domain.telemetry import Source, TelemetryEvent, parse

QID = "0f9d6c1e-7c1b-4c9e-9a0e-2f4b8f1d2a3c"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def plan(body: dict[str, Any]) -> QueueState:
    queue = planner.plan(TypeAdapter(StartRequest).validate_python(body), QID)
    state.claim_ready(queue, T0)
    return queue


def event(queue: QueueState, index: int, status: str, records: int | None = None) -> TelemetryEvent:
    raw: dict[str, Any] = {
        "event": status,
        "queue_id": queue.id,
        "producer": queue.steps[index].telemetry_id,
    }
    if records is not None:
        raw["records_written"] = records
    return parse(raw, Source.EVENTS)


def apply(queue: QueueState, index: int, status: str, records: int | None = None) -> state.Outcome:
    ev = event(queue, index, status, records)
    return state.apply_telemetry(queue, queue.steps[index], ev, T0)


def test_step_moves_forward_and_counts_only_grow(single: dict[str, Any]) -> None:
    queue = plan(single)
    apply(queue, 0, "loading", 500)
    apply(queue, 0, "started", 100)  # late, out of order
    assert queue.steps[0].status is StepStatus.LOADING
    assert queue.steps[0].records_written == 500
    assert queue.status is QueueStatus.LOADING
    apply(queue, 0, "finished", 900)
    assert queue.status is QueueStatus.FINISHED
    assert queue.records_written == 900
    assert queue.finished_at is not None


def test_terminal_states_are_sticky(single: dict[str, Any]) -> None:
    queue = plan(single)
    apply(queue, 0, "finished", 10)
    for status in ("loading", "started", "error", "interrupted"):
        apply(queue, 0, status)
    assert queue.steps[0].status is StepStatus.FINISHED
    assert queue.status is QueueStatus.FINISHED


def test_duplicates_and_shuffles_reach_the_same_state(historical: dict[str, Any]) -> None:
    log = []
    for index in range(4):
        log += [(index, "started", 0)]
        log += [(index, "loading", n * 10) for n in range(1, 6)]
        log += [(index, "finished", 60)]
    reference = plan(historical)
    for index, status, records in log:
        apply(reference, index, status, records)
    rng = random.Random(7)
    for _ in range(20):
        shuffled = log + rng.sample(log, k=len(log) // 2)
        rng.shuffle(shuffled)
        queue = plan(historical)
        for index, status, records in shuffled:
            apply(queue, index, status, records)
        assert [(s.status, s.records_written) for s in queue.steps] == [
            (s.status, s.records_written) for s in reference.steps
        ]


def test_fail_fast_stops_running_skips_pending_and_names_the_step(
    historical: dict[str, Any],
) -> None:
    queue = plan(historical)
    outcome = apply(queue, 3, "error")
    assert queue.status is QueueStatus.ERROR
    assert queue.error_message is not None and "step 3 (arango-connector)" in queue.error_message
    assert [s.status for s in queue.steps] == [
        StepStatus.STOPPED,
        StepStatus.STOPPED,
        StepStatus.STOPPED,
        StepStatus.ERROR,
        StepStatus.SKIPPED,
        StepStatus.SKIPPED,
    ]
    assert outcome.kill == {0, 1, 2}


def test_error_with_retries_left_keeps_the_step_running(single: dict[str, Any]) -> None:
    single_with_retry = {
        "symbol": single["symbol"],
        "time_range": single["time_range"],
        "requests": [{"target": "loader-producer", "type": "api_trades", "max_retries": 1}],
    }
    queue = plan(single_with_retry)
    apply(queue, 0, "error")
    assert queue.steps[0].status is StepStatus.LAUNCHING
    assert queue.status is not QueueStatus.ERROR
    state.set_attempts(queue, 0, 2, datetime.now(UTC))
    apply(queue, 0, "error")
    assert queue.status is QueueStatus.ERROR


def test_stop_marks_stopping_then_stopped(historical: dict[str, Any]) -> None:
    queue = plan(historical)
    state.request_stop(queue, T0, timedelta(seconds=30))
    assert queue.status is QueueStatus.STOPPING
    assert queue.steps[4].status is StepStatus.STOPPED  # pending steps stop at once
    for index in range(4):
        apply(queue, index, "interrupted")
    assert queue.status is QueueStatus.STOPPED
    again = state.request_stop(queue, T0, timedelta(seconds=30))
    assert not again.changed


@pytest.mark.parametrize("final", ["finished", "error"])
def test_stopping_a_finished_or_failed_queue_conflicts(single: dict[str, Any], final: str) -> None:
    queue = plan(single)
    apply(queue, 0, final)
    with pytest.raises(Conflict):
        state.request_stop(queue, T0, timedelta(seconds=30))


def test_queue_status_is_derived() -> None:
    body = {
        "symbol": "BTCUSDT",
        "time_range": "2024-06-01:2024-06-30",
        "requests": [{"target": "loader-producer", "type": "api_trades"}],
    }
    queue = planner.plan(TypeAdapter(StartRequest).validate_python(body), QID)
    assert state.derive_status(queue) is QueueStatus.PENDING


def test_worker_must_stop_once_its_step_ends_unfinished_or_its_queue_stops(
    single: dict[str, Any],
) -> None:
    queue = plan(single)
    step = queue.steps[0]
    apply(queue, 0, "loading", 10)
    assert not state.worker_must_stop(queue, step)
    assert not state.worker_must_stop(queue, None)
    state.request_stop(queue, T0, timedelta(seconds=30))
    assert state.worker_must_stop(queue, None)
    assert not state.ended_unfinished(step)  # still running: the grace period is for it


def test_a_finished_step_is_not_told_to_stop_while_its_queue_runs(
    historical: dict[str, Any],
) -> None:
    queue = plan(historical)
    step = queue.steps[0]
    apply(queue, 0, "finished", 10)
    assert queue.status is QueueStatus.LOADING
    assert not state.ended_unfinished(step)
    assert not state.worker_must_stop(queue, step)


def test_an_errored_step_ended_unfinished(single: dict[str, Any]) -> None:
    queue = plan(single)
    apply(queue, 0, "error")
    assert state.ended_unfinished(queue.steps[0])
    assert state.worker_must_stop(queue, queue.steps[0])


def test_a_batch_applied_at_once_equals_its_events_one_by_one(historical: dict[str, Any]) -> None:
    """The dispatcher folds a fetched batch per queue: same queue, same history, any order."""
    historical["requests"][1]["max_retries"] = 1
    rng = random.Random(11)
    statuses = ["started", "loading", "loading", "loading", "finished", "error", "interrupted"]
    for _ in range(200):
        log = [
            (rng.randrange(4), rng.choice(statuses), rng.choice([None, rng.randrange(1000)]))
            for _ in range(rng.randrange(1, 40))
        ]
        one_by_one = plan(historical)
        batched = one_by_one.model_copy(deep=True)
        stranger = parse({"event": "loading", "queue_id": QID, "producer": "nobody"}, Source.EVENTS)
        events = [event(one_by_one, i, s, r) for i, s, r in log]
        expected: list[Any] = []
        for ev in events:
            step = state.find_step(one_by_one, ev)
            assert step is not None
            outcome = state.apply_telemetry(one_by_one, step, ev, T0)
            history.stamp(outcome.events, f"telemetry:{ev.producer}")
            expected += outcome.events
        at = rng.randrange(len(events) + 1)
        outcome, unknown = state.apply_telemetry_batch(
            batched, [*events[:at], stranger, *events[at:]], T0
        )
        assert unknown == [stranger]
        assert batched.model_dump() == one_by_one.model_dump(), log
        assert [e.model_dump() for e in outcome.events] == [e.model_dump() for e in expected], log
        assert outcome.transitioned == any(e.kind is EventKind.STEP_STATUS for e in expected)
