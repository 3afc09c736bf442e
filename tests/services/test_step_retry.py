"""A step's retry through the services (docs/pipelines.md "Retry"): the failed attempt's job
goes, the step waits `retrying` on the services' clock, and is relaunched at its `retry_at` —
not before, and once, however many replicas look."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog

from queue_manager.domain.models import QueueStatus, StepStatus
from queue_manager.ports import JobPhase, JobStatus
from queue_manager.services.step_watch import StepWatch
from tests.services.conftest import Services

BODY: dict[str, Any] = {
    "symbol": "BTCUSDT",
    "time_range": "2024-01-01:2024-01-02",
    "type": "api",
    "retry": {"limit": 2, "backoff": {"initial": 1, "factor": 2, "max": 60, "jitter": 0}},
}


def _retries(services: Services, error_class: str) -> float:
    value = services.metrics.registry.get_sample_value(
        "queue_manager_retries_total", {"target": "loader-producer", "class": error_class}
    )
    return value or 0.0


async def test_a_rate_limited_step_is_relaunched_at_its_retry_at_not_before_and_once(
    services: Services,
) -> None:
    queue = await services.start(BODY)
    first = queue.steps[0].job_name
    assert [spec.name for spec in services.launcher.launched] == [first]
    await services.report(queue, 0, "loading", records_written=10)
    failed_at = services.clock.now()
    await services.report(
        queue, 0, "error", finished=True, error_message="HTTP 429", http_status=429, retry_after=7
    )

    stored = await services.get(queue.id)
    step = stored.steps[0]
    assert step.status is StepStatus.RETRYING and stored.status is QueueStatus.LOADING
    assert step.retry_at == failed_at + timedelta(seconds=7)
    assert services.launcher.deleted == [first]  # the failed attempt's job
    assert _retries(services, "rate_limited") == 1

    # Another replica looks as well: the store's compare-and-set lets one of them relaunch.
    replica = StepWatch(
        services.engine,
        store=services.store,
        metrics=services.metrics,
        clock=services.clock,
        topics=None,
        period=60,
        window=0.0,
        quiet=0.0,
    )
    services.clock.advance(timedelta(seconds=6.9))
    await services.step_watch.tick()
    await replica.tick()
    assert len(services.launcher.launched) == 1
    services.clock.advance(timedelta(seconds=0.1))
    await services.step_watch.tick()
    await replica.tick()
    services.clock.advance(timedelta(seconds=5))
    await replica.tick()
    await services.step_watch.tick()
    await services.reconciler.reconcile()

    names = [spec.name for spec in services.launcher.launched]
    assert names == [first, first + "-r1"]
    relaunched = await services.get(queue.id)
    step = relaunched.steps[0]
    assert step.status is StepStatus.LAUNCHING and step.attempts == 2 and step.retry_at is None
    assert relaunched.status is QueueStatus.LOADING
    assert [a.attempt for a in step.attempts_log] == [1, 2]
    assert step.attempts_log[0].retry_at == failed_at + timedelta(seconds=7)

    await services.report(relaunched, 0, "finished", records_written=20)
    done = await services.get(queue.id)
    assert done.status is QueueStatus.FINISHED and done.steps[0].attempts_log[-1].ended_at
    events = await services.store.events(queue.id, after=0, limit=1000)
    # The queue stayed `loading` all along, retry included.
    assert [e.to for e in events if e.kind.value == "queue.status"] == [
        "pending",
        "loading",
        "finished",
    ]
    moves = [(e.from_, e.to) for e in events if e.kind.value == "step.status"]
    assert moves.count(("loading", "retrying")) == 1
    assert moves.count(("retrying", "pending")) == 1


async def test_a_failed_attempts_job_still_going_is_deleted_without_a_warning(
    services: Services,
) -> None:
    # Kubernetes deletes a Job in the background: its watch may report the failed attempt's
    # Job as active after the step moved on. Deleted again, and logged as what it is, not as a
    # Job no queue knows (P13 logged a thousand such warnings after one rate limit).
    queue = await services.start(BODY)
    first = queue.steps[0].job_name
    await services.report(queue, 0, "loading", records_written=10)
    await services.report(
        queue, 0, "error", finished=True, error_message="HTTP 429", http_status=429, retry_after=7
    )
    services.clock.advance(timedelta(seconds=8))
    await services.step_watch.tick()
    assert [spec.name for spec in services.launcher.launched] == [first, first + "-r1"]

    with structlog.testing.capture_logs() as logs:
        changed = await services.job_events.on_job(JobStatus(first, queue.id, 0, JobPhase.ACTIVE))
        stranger = await services.job_events.on_job(
            JobStatus("qm-gone-0-loader-producer", "no-such-queue", 0, JobPhase.ACTIVE)
        )

    assert not changed and not stranger
    assert services.launcher.deleted == [first, first, "qm-gone-0-loader-producer"]
    said = [(e["log_level"], e["event"]) for e in logs]
    assert ("info", "deleting the job of an earlier attempt") in said
    assert ("warning", "deleting a job no queue knows") in said
    assert len([e for e in said if e[0] == "warning"]) == 1
    assert (await services.get(queue.id)).steps[0].status is StepStatus.LAUNCHING


async def test_a_late_report_of_the_failed_attempt_changes_nothing(services: Services) -> None:
    queue = await services.start(BODY)
    await services.report(queue, 0, "error", finished=True, error_message="HTTP 503")
    stored = await services.get(queue.id)
    assert stored.steps[0].status is StepStatus.RETRYING
    await services.report(queue, 0, "loading", records_written=99)  # the old run's producer
    await services.report(queue, 0, "finished", records_written=99)
    again = await services.get(queue.id)
    assert again.steps[0].status is StepStatus.RETRYING and again.steps[0].records_written == 0


async def test_an_error_class_outside_the_policy_fails_the_queue(services: Services) -> None:
    queue = await services.start(BODY)
    await services.report(queue, 0, "error", finished=True, error_message="KeyError: 'close'")
    stored = await services.get(queue.id)
    assert stored.status is QueueStatus.ERROR and stored.steps[0].error_class == "error"
    assert _retries(services, "error") == 0
