"""What the engine does for the platform's own workers (docs/pipelines.md): a connector's group
positioned before its loader writes, a drained connector ended `finished`, a finished job that
never exits deleted, a recoverable error counted."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from queue_manager.domain import naming
from queue_manager.domain.models import QueueStatus, StepStatus
from queue_manager.ports import JobPhase, JobStatus
from queue_manager.services.step_watch import StepWatch
from tests.services.conftest import Services


async def test_each_connector_group_is_positioned_before_any_loader_launches(
    services: Services, historical: dict[str, Any]
) -> None:
    queue = await services.start(historical)
    calls = services.launcher.calls
    group = naming.connector_group(queue.id)
    positions = [c for c in calls if c[0] == "position"]
    assert sorted(positions) == sorted(
        ("position", queue.steps[i].kafka_topic or "", group, "start") for i in (2, 3)
    )
    first_loader = calls.index(("launch", "loader-producer"))
    assert all(calls.index(p) < first_loader for p in positions)


async def test_both_connectors_groups_are_positioned_before_either_connector_joins(
    services: Services, historical: dict[str, Any]
) -> None:
    # A queue's connectors share one consumer group, which takes no offsets while a member is
    # in it: had the first connector started before the second's offsets were set, the start
    # would wait for it to end.
    await services.start(historical)
    calls = services.launcher.calls
    first_launch = next(i for i, call in enumerate(calls) if call[0] == "launch")
    assert [c[0] for c in calls[:first_launch]] == ["position", "position"]
    assert [c for c in calls[first_launch:] if c[0] == "position"] == []


async def test_a_retry_of_loader_and_connector_starts_the_group_at_the_topics_end(
    services: Services, historical: dict[str, Any]
) -> None:
    queue = await services.start(historical)
    await services.report(queue, 0, "error", error_message="exchange down")
    assert (await services.get(queue.id)).status is QueueStatus.ERROR
    services.launcher.calls.clear()
    await services.queues.retry(queue.id)
    positions = [c for c in services.launcher.calls if c[0] == "position"]
    # steps 0 and 2 (candles) run again: from the end; the trades pair was stopped and both run
    # again too
    assert sorted(p[1:] for p in positions) == sorted(
        (queue.steps[i].kafka_topic or "", naming.connector_group(queue.id), "end") for i in (2, 3)
    )


async def test_a_connector_relaunched_alone_keeps_its_groups_offsets(
    services: Services, historical: dict[str, Any]
) -> None:
    queue = await services.start(historical)
    stored = await services.get(queue.id)
    services.launcher.calls.clear()
    await services.engine.launch(stored, [2])
    assert services.launcher.calls[0] == (
        "position",
        stored.steps[2].kafka_topic,
        naming.connector_group(queue.id),
        "start",
    )


async def _loaders_finished(services: Services, historical: dict[str, Any]) -> Any:
    queue = await services.start(historical)
    for index in (0, 1):
        await services.report(queue, index, "finished", records_written=100, finished=True)
    for index in (2, 3):
        await services.report(queue, index, "loading", records_written=100, finished=False)
    return queue


async def test_a_connector_is_drained_only_once_its_lag_is_zero(
    services: Services, historical: dict[str, Any]
) -> None:
    queue = await _loaders_finished(services, historical)
    services.topics.lag = {queue.steps[2].kafka_topic: 5, queue.steps[3].kafka_topic: 0}
    await services.step_watch.tick()
    stored = await services.get(queue.id)
    assert [stored.steps[i].status for i in (2, 3)] == [StepStatus.LOADING, StepStatus.FINISHED]
    assert services.launcher.deleted == [stored.steps[3].job_name]
    assert "graph-builder" not in services.launcher.targets()
    services.topics.lag[queue.steps[2].kafka_topic or ""] = 0
    await services.step_watch.tick()
    stored = await services.get(queue.id)
    assert stored.steps[2].status is StepStatus.FINISHED
    assert services.launcher.targets()[-1] == "graph-builder"
    events = await services.store.events(queue.id, after=0, limit=1000)
    drained = [e for e in events if e.step == 2 and e.to == "finished"]
    assert drained[0].message is not None and drained[0].message.startswith("drained: ")
    assert drained[0].actor == "reconciler"


async def test_no_connector_drains_while_a_loader_of_its_type_runs(
    services: Services, historical: dict[str, Any]
) -> None:
    queue = await services.start(historical)
    await services.report(queue, 0, "loading", records_written=10)
    services.topics.lag = {s.kafka_topic: 0 for s in queue.steps if s.kafka_topic}
    await services.step_watch.tick()
    stored = await services.get(queue.id)
    assert all(stored.steps[i].status is StepStatus.LAUNCHING for i in (2, 3))
    assert services.launcher.deleted == []


async def test_the_quiet_period_restarts_when_the_connectors_records_move(
    services: Services, historical: dict[str, Any]
) -> None:
    now = [100.0]
    watch = StepWatch(
        services.engine,
        store=services.store,
        metrics=services.metrics,
        clock=services.clock,
        topics=services.topics,
        period=60,
        window=0,
        quiet=10,
        monotonic=lambda: now[0],
    )
    queue = await _loaders_finished(services, historical)
    services.topics.lag = {s.kafka_topic: 0 for s in queue.steps if s.kafka_topic}
    await watch.tick()
    now[0] += 9
    await services.report(queue, 2, "loading", records_written=150)
    await watch.tick()
    now[0] += 9  # 18 s after the first look, 9 s after the records last moved
    await watch.tick()
    stored = await services.get(queue.id)
    assert stored.steps[2].status is StepStatus.LOADING
    assert stored.steps[3].status is StepStatus.FINISHED
    now[0] += 1
    await watch.tick()
    assert (await services.get(queue.id)).steps[2].status is StepStatus.FINISHED


async def test_a_finished_step_whose_job_still_runs_is_ended_after_the_grace(
    services: Services, single: dict[str, Any]
) -> None:
    queue = await services.start(single)
    await services.report(queue, 0, "finished", records_written=3, finished=True)
    step = (await services.get(queue.id)).steps[0]
    job = JobStatus(step.job_name, queue.id, 0, JobPhase.ACTIVE)
    await services.job_events.on_job(job)
    assert services.launcher.deleted == []
    services.clock.advance(timedelta(seconds=30))  # FINISHED_JOB_GRACE_SECONDS
    await services.job_events.on_job(job)
    assert services.launcher.deleted == [step.job_name]
    await services.job_events.on_job(JobStatus(step.job_name, queue.id, 0, JobPhase.FAILED, "143"))
    stored = await services.get(queue.id)
    assert stored.steps[0].status is StepStatus.FINISHED
    assert stored.status is QueueStatus.FINISHED


async def test_a_recoverable_error_is_counted_and_the_step_goes_on(
    services: Services, single: dict[str, Any]
) -> None:
    queue = await services.start(single)
    await services.report(
        queue, 0, "error", finished=False, error_message="cannot store record at offset 7"
    )
    stored = await services.get(queue.id)
    assert stored.status is QueueStatus.PENDING or stored.status is QueueStatus.LOADING
    assert stored.steps[0].status is StepStatus.LAUNCHING
    assert (stored.steps[0].warnings, stored.steps[0].last_warning) == (
        1,
        "cannot store record at offset 7",
    )
    metrics = services.metrics.render().decode()
    assert 'queue_manager_step_warnings_total{target="loader-producer"} 1.0' in metrics
