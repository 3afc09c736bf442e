"""A worker's word outside its reports (docs/worker-protocol.md, docs/security.md): how long its
credential holds (its step run), and what its exit file's count does to the step."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter

from queue_manager.api.worker_auth import WorkerTokens
from queue_manager.domain import planner, state
from queue_manager.domain.models import QueueState, StepStatus
from queue_manager.domain.requests import StartRequest

QID = "5b0a3c2e-1d4f-4a6b-8c9d-0e1f2a3b4c5d"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def plan(body: dict[str, Any]) -> QueueState:
    queue = planner.plan(TypeAdapter(StartRequest).validate_python(body), QID)
    state.claim_ready(queue, T0)
    return queue


def test_a_credential_names_one_run_of_one_step() -> None:
    tokens = WorkerTokens(b"s" * 32)
    producers = [
        f"loader-producer-{QID}-0",
        f"loader-producer-{QID}-1",
        f"loader-producer-{QID}-0-r1",
    ]
    made = [tokens.token(p) for p in producers]
    assert len(set(made)) == 3
    assert tokens.check(producers[0], made[0])
    assert not tokens.check(producers[1], made[0]) and not tokens.check(producers[2], made[0])
    assert made[0] != WorkerTokens(b"t" * 32).token(producers[0])  # per service secret
    # not the former per-queue credential, so none handed out before still works
    assert QID not in made and tokens.token(QID) not in made


def test_a_run_is_over_once_its_step_ended_or_a_retry_replaced_it(
    historical: dict[str, Any],
) -> None:
    queue = plan(historical)
    first = queue.steps[0].telemetry_id
    assert state.run_over(queue, first) is None
    assert state.run_over(queue, queue.steps[5].telemetry_id) is None  # pending: not ended
    state.fail_step(queue, 0, "boom", T0)
    ended = state.run_over(queue, first)
    assert ended is not None and "step 0 (loader-producer) run 0 has ended (error)" in ended
    state.retry(queue, T0)
    assert queue.steps[0].telemetry_id != first
    replaced = state.run_over(queue, first)
    assert replaced is not None and "retry replaces it" in replaced
    assert state.run_over(queue, queue.steps[0].telemetry_id) is None
    assert state.run_over(queue, f"loader-producer-{QID}-9") is not None


def test_an_exit_files_count_only_grows_the_step(single: dict[str, Any]) -> None:
    queue = plan(single)
    step = queue.steps[0]
    step.records_written = 800
    assert not state.job_records(queue, 0, 500, T0).changed
    assert step.records_written == 800
    assert state.job_records(queue, 0, 2400, T0).changed
    assert (step.records_written, queue.records_written) == (2400, 2400)
    state.finish_step(queue, 0, T0)
    # even once the step ended: a count the worker wrote is never lost
    assert state.job_records(queue, 0, 3000, T0).changed
    assert step.status is StepStatus.FINISHED and queue.records_written == 3000
