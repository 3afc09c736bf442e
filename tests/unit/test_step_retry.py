"""A step's retry policy (docs/pipelines.md "Retry"): the classification rule, the backoff's
bounds, and what `fail_step` decides — `retrying` with its `retry_at`, or failed as before."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from queue_manager.domain import planner, state
from queue_manager.domain.errors import InvalidRequest
from queue_manager.domain.history import EventKind
from queue_manager.domain.models import QueueState, QueueStatus, StepStatus, Target
from queue_manager.domain.requests import StartRequest
from queue_manager.domain.retry import (
    Attempt,
    Backoff,
    ErrorClass,
    RetryPolicy,
    classify_report,
    retry_after_in,
)
from queue_manager.domain.telemetry import Source, parse

QID = "0f9d6c1e-7c1b-4c9e-9a0e-2f4b8f1d2a3c"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
FAST = {"initial": 1, "factor": 2, "max": 60, "jitter": 0}


def _queue(retry: dict[str, Any] | None = None, **body: Any) -> QueueState:
    request: dict[str, Any] = {
        "symbol": "BTCUSDT",
        "time_range": "2024-01-01:2024-01-02",
        "type": "api",
        **body,
    }
    if retry is not None:
        request["retry"] = retry
    queue = planner.plan(TypeAdapter(StartRequest).validate_python(request), QID)
    state.claim_ready(queue, T0)
    return queue


def _report(queue: QueueState, at: datetime, **fields: Any) -> state.Outcome:
    step = queue.steps[0]
    raw = {"event": "error", "queue_id": queue.id, "producer": step.telemetry_id, **fields}
    raw.setdefault("finished", True)
    return state.apply_telemetry(queue, step, parse(raw, Source.EVENTS), at)


# -- the classification rule (docs/operations.md "Error classes") -----------------------------


@pytest.mark.parametrize(
    ("error_class", "http_status", "message", "expected"),
    [
        ("transient", 429, "HTTP 429", ErrorClass.TRANSIENT),  # the worker's own word first
        ("nonsense", 429, None, ErrorClass.RATE_LIMITED),  # not ours: its status then
        (None, 418, None, ErrorClass.RATE_LIMITED),
        (None, 503, "whatever", ErrorClass.TRANSIENT),
        (None, 404, "HTTP 503", ErrorClass.ERROR),  # a status given wins over the message
        (None, None, "binance: HTTP 429 Too Many Requests", ErrorClass.RATE_LIMITED),
        (None, None, "status code: 418", ErrorClass.RATE_LIMITED),
        (None, None, "502 Bad Gateway from api.binance.com", ErrorClass.TRANSIENT),
        (None, None, "ConnectionResetError: connection reset by peer", ErrorClass.TRANSIENT),
        (None, None, "KeyError: 'close'", ErrorClass.ERROR),
        (None, None, "status 200 but no data", ErrorClass.ERROR),
        (None, None, None, ErrorClass.ERROR),
    ],
)
def test_the_classification_rule(
    error_class: str | None, http_status: int | None, message: str | None, expected: ErrorClass
) -> None:
    assert classify_report(error_class, http_status, message) is expected


def test_retry_after_is_read_from_a_message() -> None:
    assert retry_after_in("HTTP 429 (Retry-After: 7)") == 7.0
    assert retry_after_in('{"retry_after": 2.5}') == 2.5
    assert retry_after_in("HTTP 429") is None


# -- the policy's bounds ----------------------------------------------------------------------


def test_backoff_grows_by_its_factor_up_to_its_max_and_jitter_stays_within_its_share() -> None:
    backoff = Backoff(initial=2, factor=3, max=50, jitter=0)
    assert [backoff.delay(n) for n in (1, 2, 3, 4)] == [2, 6, 18, 50]
    jittered = Backoff(initial=10, factor=1, max=10, jitter=0.2)
    rand = random.Random(1)
    delays = [jittered.delay(1, rand) for _ in range(200)]
    assert all(8 <= d <= 12 for d in delays) and max(delays) - min(delays) > 2


def test_the_next_attempt_is_never_before_retry_after() -> None:
    policy = RetryPolicy(limit=3, backoff=Backoff(initial=1, jitter=0))
    assert policy.next_at(T0, 1, 7) == T0 + timedelta(seconds=7)
    assert policy.next_at(T0, 1, None) == T0 + timedelta(seconds=1)
    assert policy.next_at(T0, 4, 0.5) == T0 + timedelta(seconds=8)


@pytest.mark.parametrize(
    ("retry", "field"),
    [
        ({"on": ["rate_limited", "sometimes"]}, "retry.on.1"),
        ({"backoff": {"initial": -1}}, "retry.backoff.initial"),
        ({"backoff": {"max": 10**9}}, "retry.backoff.max"),
        ({"backoff": {"factor": 1000}}, "retry.backoff.factor"),
        ({"limit": 101}, "retry.limit"),
        ({"limit": 3, "tries": 2}, "retry.tries"),
    ],
)
def test_a_bad_policy_is_refused_naming_its_field(retry: dict[str, Any], field: str) -> None:
    body = {"symbol": "BTCUSDT", "time_range": "2024-01-01:2024-01-02", "type": "api"}
    with pytest.raises(ValidationError) as caught:
        TypeAdapter(StartRequest).validate_python({**body, "retry": retry})
    locations = [".".join(str(p) for p in e["loc"][1:]) for e in caught.value.errors()]
    assert field in locations


def test_the_planner_copies_the_fields_and_applies_a_targets_default() -> None:
    body = {
        "symbol": "BTCUSDT",
        "time_range": "2024-01-01:2024-01-02",
        "requests": [
            {"target": "loader-producer", "type": "api_candles_5m", "timeout": 60},
            {"target": "arango-connector", "type": "api_candles_5m", "retry": {"limit": 1}},
        ],
    }
    default = RetryPolicy(limit=5, on=[ErrorClass.TRANSIENT])
    queue = planner.plan(
        TypeAdapter(StartRequest).validate_python(body),
        QID,
        retry_defaults={Target.LOADER: default, Target.CONNECTOR: default},
    )
    loader, connector = queue.steps
    assert loader.retry == default and loader.timeout == 60
    assert connector.retry is not None and connector.retry.limit == 1  # its own wins


def test_simulate_is_refused_on_an_image_other_than_the_reference_workers() -> None:
    step = {"target": "loader-producer", "type": "api_candles_5m", "simulate": {"fail_after": 1}}
    body = {"symbol": "BTCUSDT", "time_range": "2024-01-01:2024-01-02"}
    adapter = TypeAdapter(StartRequest)
    with pytest.raises(InvalidRequest) as caught:
        planner.plan(
            adapter.validate_python(
                {**body, "requests": [{**step, "image": "streamforge/loader-producer:2"}]}
            ),
            QID,
        )
    assert [e["field"] for e in caught.value.errors] == ["requests.0.simulate"]
    references = ("streamforge/queue-manager:0.1.0", "reg.local:5000/streamforge/queue-manager")
    for image in (None, *references):
        request = {**step, "image": image} if image else step
        queue = planner.plan(adapter.validate_python({**body, "requests": [request]}), QID)
        assert queue.steps[0].params["simulate"] == {"fail_after": 1, "attempts": 1}


# -- fail_step's decisions --------------------------------------------------------------------


def test_a_429_with_retry_after_waits_retrying_and_ends_its_run() -> None:
    queue = _queue({"limit": 2, "backoff": FAST})
    step = queue.steps[0]
    old_job, old_producer = step.job_name, step.telemetry_id
    out = _report(queue, T0, error_message="binance said no", http_status=429, retry_after=7)
    assert step.status is StepStatus.RETRYING
    assert queue.status is QueueStatus.LOADING and not queue.status.terminal
    assert step.retry_at == T0 + timedelta(seconds=7)  # Retry-After beats the 1 s backoff
    assert step.error_class is ErrorClass.RATE_LIMITED and step.retries == 1
    # Its run ended: the next attempt is another job and producer, the failed one's job goes.
    assert (step.job_name, step.telemetry_id) == (old_job + "-r1", old_producer + "-r1")
    assert [(f.job, f.error_class, f.retry_at) for f in out.failures] == [
        (old_job, ErrorClass.RATE_LIMITED, step.retry_at)
    ]
    assert state.run_over(queue, old_producer) is not None
    retrying = [e for e in out.events if e.kind is EventKind.STEP_STATUS and e.to == "retrying"]
    assert len(retrying) == 1 and "rate_limited" in (retrying[0].message or "")
    [attempt] = step.attempts_log
    assert attempt.attempt == 1 and attempt.ended_at == T0 and attempt.retry_at == step.retry_at
    assert attempt.error_class is ErrorClass.RATE_LIMITED
    assert attempt.model_dump(mode="json")["class"] == "rate_limited"


def test_a_class_the_policy_does_not_name_fails_fast_as_before() -> None:
    queue = _queue({"limit": 2, "on": ["rate_limited"]})
    _report(queue, T0, error_message="HTTP 503 Service Unavailable")
    step = queue.steps[0]
    assert step.status is StepStatus.ERROR and queue.status is QueueStatus.ERROR
    assert step.error_class is ErrorClass.TRANSIENT
    assert step.attempts_log[-1].error_class is ErrorClass.TRANSIENT


def test_configuration_is_never_retried_and_no_policy_means_no_retry() -> None:
    queue = _queue({"limit": 5, "on": ["configuration", "error"]})
    state.fail_step(queue, 0, "image pull failed", T0, ErrorClass.CONFIGURATION)
    assert queue.steps[0].status is StepStatus.ERROR
    plain = _queue()
    state.fail_step(plain, 0, "HTTP 429", T0, ErrorClass.RATE_LIMITED, 7)
    assert plain.steps[0].status is StepStatus.ERROR


def test_the_limit_counts_retries_then_the_step_fails() -> None:
    queue = _queue({"limit": 2, "backoff": FAST})
    step = queue.steps[0]
    at = T0
    for number in (1, 2):
        state.fail_step(queue, 0, "HTTP 502", at, ErrorClass.TRANSIENT)
        assert step.status is StepStatus.RETRYING and step.retries == number
        assert step.retry_at == at + timedelta(seconds=2 ** (number - 1))
        at = step.retry_at
        state.relaunch_due(queue, at)
        state.claim_ready(queue, at)
        assert step.status is StepStatus.LAUNCHING and step.attempts == number + 1
    state.fail_step(queue, 0, "HTTP 502", at, ErrorClass.TRANSIENT)
    assert step.status is StepStatus.ERROR and queue.status is QueueStatus.ERROR
    assert [a.attempt for a in step.attempts_log] == [1, 2, 3]
    assert [a.retry_at is not None for a in step.attempts_log] == [True, True, False]


def test_a_retrying_step_relaunches_at_its_time_not_before_and_once() -> None:
    queue = _queue({"limit": 1, "backoff": FAST})
    state.fail_step(queue, 0, "HTTP 429", T0, ErrorClass.RATE_LIMITED, 7)
    step = queue.steps[0]
    assert not state.relaunch_due(queue, T0 + timedelta(seconds=6.9)).changed
    assert state.next_retry(queue) == T0 + timedelta(seconds=7)
    out = state.relaunch_due(queue, T0 + timedelta(seconds=7))
    assert out.transitioned and step.status is StepStatus.PENDING and step.retry_at is None
    assert not state.relaunch_due(queue, T0 + timedelta(seconds=8)).changed  # once
    _, claimed = state.claim_ready(queue, T0 + timedelta(seconds=8))
    assert claimed == [step] and len(step.attempts_log) == 2


def test_a_late_word_of_the_failed_attempt_changes_nothing() -> None:
    queue = _queue({"limit": 1, "backoff": FAST})
    state.fail_step(queue, 0, "HTTP 429", T0, ErrorClass.RATE_LIMITED)
    retry_at = queue.steps[0].retry_at
    # Its job's end (the launcher's word, after the worker's report) is a second failure.
    assert not state.fail_step(queue, 0, "job failed", T0, ErrorClass.ERROR).changed
    assert queue.steps[0].status is StepStatus.RETRYING and queue.steps[0].retry_at == retry_at


def test_stopping_a_queue_stops_its_retrying_step_and_a_stopping_queue_never_retries() -> None:
    queue = _queue({"limit": 3})
    state.fail_step(queue, 0, "HTTP 429", T0, ErrorClass.RATE_LIMITED)
    state.request_stop(queue, T0, timedelta(seconds=30))
    assert queue.steps[0].status is StepStatus.STOPPED and queue.status is QueueStatus.STOPPED
    other = _queue({"limit": 3})
    state.request_stop(other, T0, timedelta(seconds=30))
    state.fail_step(other, 0, "HTTP 429", T0, ErrorClass.RATE_LIMITED)
    assert other.steps[0].status is StepStatus.ERROR


def test_another_steps_failure_cancels_a_retry(historical: dict[str, Any]) -> None:
    request = TypeAdapter(StartRequest).validate_python(historical)
    queue = planner.plan(request, QID)
    state.claim_ready(queue, T0)
    queue.steps[0].retry = RetryPolicy(limit=3)
    state.fail_step(queue, 0, "HTTP 429", T0, ErrorClass.RATE_LIMITED)
    assert queue.steps[0].status is StepStatus.RETRYING
    running = next(s for s in queue.steps if s.status.running)
    state.fail_step(queue, running.index, "KeyError", T0, ErrorClass.ERROR)
    assert queue.status is QueueStatus.ERROR
    assert queue.steps[0].status is StepStatus.STOPPED and queue.steps[0].retry_at is None


def test_a_finished_attempt_is_closed_without_a_class() -> None:
    queue = _queue({"limit": 1, "backoff": FAST})
    state.fail_step(queue, 0, "HTTP 429", T0, ErrorClass.RATE_LIMITED)
    state.relaunch_due(queue, T0 + timedelta(seconds=5))
    state.claim_ready(queue, T0 + timedelta(seconds=5))
    state.finish_step(queue, 0, T0 + timedelta(seconds=9))
    assert queue.status is QueueStatus.FINISHED
    last = queue.steps[0].attempts_log[-1]
    assert last == Attempt(
        attempt=2, started_at=T0 + timedelta(seconds=5), ended_at=T0 + timedelta(seconds=9)
    )


def test_a_retry_by_hand_starts_the_policy_afresh() -> None:
    queue = _queue({"limit": 1, "backoff": FAST})
    state.fail_step(queue, 0, "HTTP 429", T0, ErrorClass.RATE_LIMITED)
    state.relaunch_due(queue, T0 + timedelta(seconds=5))
    state.claim_ready(queue, T0 + timedelta(seconds=5))
    state.fail_step(queue, 0, "HTTP 429", T0 + timedelta(seconds=6), ErrorClass.RATE_LIMITED)
    assert queue.status is QueueStatus.ERROR
    state.retry(queue, T0 + timedelta(seconds=7))
    assert queue.steps[0].retries == 0
    state.claim_ready(queue, T0 + timedelta(seconds=7))
    state.fail_step(queue, 0, "HTTP 429", T0 + timedelta(seconds=8), ErrorClass.RATE_LIMITED)
    assert queue.steps[0].status is StepStatus.RETRYING


def test_a_held_error_report_keeps_its_class_through_the_reorder_window() -> None:
    queue = _queue({"limit": 1, "backoff": FAST})
    step = queue.steps[0]
    raw = {
        "event": "error",
        "queue_id": queue.id,
        "producer": step.telemetry_id,
        "finished": True,
        "error_message": "upstream said: HTTP 429 Too Many Requests, Retry-After: 30",
    }
    state.apply_telemetry(queue, step, parse(raw, Source.EVENTS), T0, window=2.0)
    assert step.status is not StepStatus.RETRYING and step.ending is not None
    state.release_endings(queue, T0 + timedelta(seconds=2), 2.0)
    assert step.status is StepStatus.RETRYING
    assert step.retry_at == T0 + timedelta(seconds=32)  # from the message: 30 s after release


def test_a_held_error_report_decides_when_its_job_fails_first() -> None:
    """On Kafka the worker's `error` (a 429) waits for the reorder window; its job's exit code
    seen meanwhile does not hide its class: the report ends the attempt, retried after it."""
    queue = _queue({"limit": 1, "backoff": FAST})
    step = queue.steps[0]
    raw = {
        "event": "error",
        "queue_id": queue.id,
        "producer": step.telemetry_id,
        "finished": True,
        "http_status": 429,
        "retry_after": 5,
        "error_message": "HTTP 429 Too Many Requests",
    }
    state.apply_telemetry(queue, step, parse(raw, Source.EVENTS), T0, window=2.0)
    assert step.ending is not None
    out = state.fail_step(queue, 0, "worker exited with code 1", T0 + timedelta(seconds=1))
    assert step.status is StepStatus.RETRYING and step.error_class is ErrorClass.RATE_LIMITED
    assert step.retry_at == T0 + timedelta(seconds=6) and step.ending is None
    assert [f.error_class for f in out.failures] == [ErrorClass.RATE_LIMITED]
    # A launcher's own class still wins over the held report.
    queue = _queue({"limit": 1, "backoff": FAST, "on": ["rate_limited"]})
    step = queue.steps[0]
    raw["producer"] = step.telemetry_id
    state.apply_telemetry(queue, step, parse(raw, Source.EVENTS), T0, window=2.0)
    state.fail_step(queue, 0, "OOMKilled", T0, ErrorClass.INFRASTRUCTURE)
    assert step.status is StepStatus.ERROR and step.error_class is ErrorClass.INFRASTRUCTURE
