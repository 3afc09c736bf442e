"""Retry in the state machine: what re-runs, what is kept, and what a late report can do."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from queue_manager.domain import state
from queue_manager.domain.errors import Conflict, InvalidRequest
from queue_manager.domain.models import QueueStatus, StepStatus
from tests.unit.test_state_machine import apply, event, plan

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def _failed_at_graph_builder(historical: dict[str, Any]) -> Any:
    queue = plan(historical)
    state.claim_ready(queue, NOW)
    for index in range(4):
        apply(queue, index, "finished", 100)
    state.claim_ready(queue, NOW)
    apply(queue, 4, "error")
    assert queue.status is QueueStatus.ERROR
    return queue


def test_retry_keeps_finished_steps_and_reruns_the_rest(historical: dict[str, Any]) -> None:
    queue = _failed_at_graph_builder(historical)
    old = {s.index: (s.job_name, s.telemetry_id) for s in queue.steps}
    state.retry(queue, NOW)
    assert queue.status in (QueueStatus.PENDING, QueueStatus.LOADING)
    assert queue.error_message is None and queue.finished_at is None and queue.retries == 1
    assert [s.status for s in queue.steps] == [StepStatus.FINISHED] * 4 + [StepStatus.PENDING] * 2
    assert [s.run for s in queue.steps] == [0, 0, 0, 0, 1, 1]
    for s in queue.steps[:4]:
        assert (s.job_name, s.telemetry_id) == old[s.index]
    for s in queue.steps[4:]:
        assert s.job_name == old[s.index][0] + "-r1"
        assert s.telemetry_id == old[s.index][1] + "-r1"
    _, claimed = state.claim_ready(queue, NOW)
    assert [s.index for s in claimed] == [4]  # its inputs are the kept outputs


def test_a_report_of_the_earlier_run_matches_no_step(historical: dict[str, Any]) -> None:
    queue = _failed_at_graph_builder(historical)
    late = event(queue, 4, "finished", 5)
    state.retry(queue, NOW)
    assert state.find_step(queue, late) is None


def test_from_step_reruns_it_and_everything_downstream(historical: dict[str, Any]) -> None:
    queue = _failed_at_graph_builder(historical)
    state.retry(queue, NOW, from_step=3)
    assert [s.run for s in queue.steps] == [0, 0, 0, 1, 1, 1]
    with pytest.raises(InvalidRequest):
        state.retry(_failed_at_graph_builder(historical), NOW, from_step=6)


@pytest.mark.parametrize("status", ["loading", "finished"])
def test_only_an_error_or_stopped_queue_can_be_retried(single: dict[str, Any], status: str) -> None:
    queue = plan(single)
    state.claim_ready(queue, NOW)
    apply(queue, 0, status)
    with pytest.raises(Conflict, match=f"is {status}; only an error or stopped queue"):
        state.retry(queue, NOW)
