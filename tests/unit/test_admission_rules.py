"""docs/operations.md admission: a queued queue launches nothing until admitted; a step whose
target is at its MAX_RUNNING_JOBS limit waits `pending`, saying why, once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter

from queue_manager.domain import planner, state
from queue_manager.domain.history import EventKind
from queue_manager.domain.models import QueueState, QueueStatus, StepStatus, Target
from queue_manager.domain.requests import StartRequest

T0 = datetime(2026, 1, 1, tzinfo=UTC)
QID = "0f9d6c1e-7c1b-4c9e-9a0e-2f4b8f1d2a31"


def queued(body: dict[str, Any]) -> QueueState:
    queue = planner.plan(TypeAdapter(StartRequest).validate_python(body), QID)
    queue.queued_at = T0
    queue.status = QueueStatus.QUEUED
    return queue


def test_a_queued_queue_launches_nothing_until_admitted(historical: dict[str, Any]) -> None:
    queue = queued({**historical, "priority": 7})
    assert queue.priority == 7
    outcome, claimed = state.claim_ready(queue, T0)
    assert claimed == [] and not outcome.changed

    admitted = state.admit(queue, T0 + timedelta(seconds=42))
    assert queue.status is QueueStatus.PENDING and queue.queued_at is None
    assert [(e.kind, e.to, e.message) for e in admitted.events] == [
        (EventKind.ADMISSION, "admitted", "admitted after 42.0 s waiting (priority 7)"),
        (EventKind.QUEUE_STATUS, "pending", None),
    ]
    _, claimed = state.claim_ready(queue, T0)
    assert {s.target for s in claimed} == {Target.LOADER, Target.CONNECTOR}
    assert not state.admit(queue, T0).changed  # admitting twice changes nothing


def test_stopping_a_queued_queue_ends_it_without_launching(historical: dict[str, Any]) -> None:
    queue = queued(historical)
    state.request_stop(queue, T0, timedelta(seconds=30), "token:ops")
    assert queue.status is QueueStatus.STOPPED
    assert all(s.status is StepStatus.STOPPED for s in queue.steps)
    assert state.claim_ready(queue, T0)[1] == []


def test_a_retried_queue_waits_for_admission_again(single: dict[str, Any]) -> None:
    queue = planner.plan(TypeAdapter(StartRequest).validate_python(single), QID)
    state.claim_ready(queue, T0)
    state.fail_step(queue, 0, "boom", T0)
    state.retry(queue, T0 + timedelta(seconds=5), queued=True)
    assert queue.status is QueueStatus.QUEUED and queue.queued_at == T0 + timedelta(seconds=5)
    assert state.claim_ready(queue, T0)[1] == []


def test_a_step_at_its_target_limit_waits_and_says_why_once(historical: dict[str, Any]) -> None:
    queue = planner.plan(
        TypeAdapter(StartRequest).validate_python(historical),
        QID,
    )
    limits = {Target.LOADER: 3}
    outcome, claimed = state.claim_ready(queue, T0, limits, {Target.LOADER: 2})
    loaders = [s for s in queue.steps if s.target is Target.LOADER]
    assert len(loaders) == 2
    assert [s.index for s in claimed if s.target is Target.LOADER] == [loaders[0].index]
    held = loaders[1]
    assert held.status is StepStatus.PENDING
    assert held.waiting == ("waiting for a loader-producer slot: MAX_RUNNING_JOBS allows 3 at once")
    said = [e for e in outcome.events if e.kind is EventKind.ADMISSION]
    assert [(e.step, e.to) for e in said] == [(held.index, "waiting")]
    # Asked again while still full: no new event, nothing written.
    again, _ = state.claim_ready(queue, T0, limits, {Target.LOADER: 3})
    assert not again.changed
    # A slot freed: it launches and the reason is gone.
    _, claimed = state.claim_ready(queue, T0, limits, {Target.LOADER: 2})
    assert held in claimed and held.status is StepStatus.LAUNCHING and held.waiting is None
