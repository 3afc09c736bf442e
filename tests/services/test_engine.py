"""The one path of state changes (services/engine.py) with the dispatcher and the reconciler
around it, in-process (docs/pipelines.md, docs/operations.md)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import structlog

from queue_manager.domain.models import QueueStatus, StepStatus
from queue_manager.ports import JobPhase, JobStatus
from tests.services.conftest import Services
from tests.support.waiting import wait_until_async


async def test_a_pipeline_launches_in_data_flow_order(
    services: Services, historical: dict[str, Any]
) -> None:
    queue = await services.start(historical)
    # loaders and their connectors together; graph-builder waits for the connectors
    assert sorted(services.launcher.targets()) == sorted(
        ["loader-producer", "loader-producer", "arango-connector", "arango-connector"]
    )
    for index in (2, 3):
        await services.report(queue, index, "started")
        await services.report(queue, index, "finished", records_written=10)
    assert services.launcher.targets()[-1] == "graph-builder"
    stored = await services.get(queue.id)
    assert stored.steps[4].status is StepStatus.LAUNCHING
    assert stored.steps[5].status is StepStatus.PENDING
    # every change went out as live updates, the queue's summary last
    assert services.updates.sent[-1]["event"] == "queue.updated"


async def test_a_failed_step_fails_the_queue_and_deletes_the_running_jobs(
    services: Services, historical: dict[str, Any]
) -> None:
    queue = await services.start(historical)
    for index in range(4):
        await services.report(queue, index, "loading", records_written=5)
    await services.report(queue, 2, "error", error_message="disk full")

    stored = await services.get(queue.id)
    assert stored.status is QueueStatus.ERROR
    assert stored.error_message == "step 2 (arango-connector) failed: disk full"
    assert [s.status for s in stored.steps] == [
        StepStatus.STOPPED,
        StepStatus.STOPPED,
        StepStatus.ERROR,
        StepStatus.STOPPED,
        StepStatus.SKIPPED,
        StepStatus.SKIPPED,
    ]
    assert sorted(services.launcher.deleted) == sorted(stored.steps[i].job_name for i in (0, 1, 3))
    await services.drain()
    assert {"queue_id": queue.id, "command": "stop"}.items() <= services.commands[-1].items()


async def test_a_refused_launch_fails_its_step_at_once(
    services: Services, single: dict[str, Any]
) -> None:
    services.launcher.refuse.add("loader-producer")
    queue = await services.start(single)
    stored = await services.get(queue.id)
    assert stored.status is QueueStatus.ERROR
    assert stored.steps[0].error_message == "launch refused: loader-producer refused by the test"


async def test_a_running_job_of_a_step_that_ended_unfinished_is_deleted(
    services: Services, single: dict[str, Any]
) -> None:
    queue = await services.start(single)
    await services.report(queue, 0, "interrupted")
    step = (await services.get(queue.id)).steps[0]
    assert step.status is StepStatus.STOPPED
    await services.job_events.on_job(JobStatus(step.job_name, queue.id, 0, JobPhase.ACTIVE))
    assert services.launcher.deleted == [step.job_name]


async def test_a_finished_step_keeps_its_job_until_it_ends(
    services: Services, historical: dict[str, Any]
) -> None:
    queue = await services.start(historical)
    await services.report(queue, 0, "finished", records_written=3)
    step = (await services.get(queue.id)).steps[0]
    await services.job_events.on_job(JobStatus(step.job_name, queue.id, 0, JobPhase.ACTIVE))
    assert services.launcher.deleted == []


async def test_an_ended_jobs_exit_file_stands_in_for_lost_reports(
    services: Services, historical: dict[str, Any]
) -> None:
    """The local launcher hands on what a worker's exit file says (docs/worker-protocol.md):
    its final count and how it ended, for reports lost while the service was down."""
    queue = await services.start(historical)
    await services.report(queue, 0, "loading", records_written=800)
    await services.report(queue, 1, "loading", records_written=800)
    steps = (await services.get(queue.id)).steps
    ended = JobStatus(steps[0].job_name, queue.id, 0, JobPhase.SUCCEEDED, outcome="finished",
                      records_written=2400)  # fmt: skip
    assert await services.job_events.on_job(ended)
    interrupted = JobStatus(steps[1].job_name, queue.id, 1, JobPhase.SUCCEEDED,
                            outcome="interrupted", records_written=1000)  # fmt: skip
    assert await services.job_events.on_job(interrupted)
    stored = await services.get(queue.id)
    assert (stored.steps[0].status, stored.steps[0].records_written) == (StepStatus.FINISHED, 2400)
    # stopped behind our back, as its lost `interrupted` report would have said: not finished
    assert (stored.steps[1].status, stored.steps[1].records_written) == (StepStatus.STOPPED, 1000)
    assert stored.steps[1].error_message == "interrupted"
    # a smaller count, heard again (the reconciler lists ended jobs), changes nothing
    assert not await services.job_events.on_job(
        JobStatus(steps[0].job_name, queue.id, 0, JobPhase.SUCCEEDED, records_written=5)
    )
    assert (await services.get(queue.id)).steps[0].records_written == 2400


async def test_reconcile_fails_a_step_whose_job_vanished_and_deletes_unknown_jobs(
    services: Services, single: dict[str, Any]
) -> None:
    queue = await services.start(single)
    await services.report(queue, 0, "loading", records_written=1)
    step = (await services.get(queue.id)).steps[0]
    services.launcher.jobs.clear()  # the job disappeared behind the service's back
    stranger = JobStatus("qm-stranger-0-loader-producer", "no-such-queue", 0, JobPhase.ACTIVE)
    services.launcher.jobs[stranger.name] = stranger
    # A step launched at the instant of the pass may have its job missing from the list taken
    # then; this one was launched a second before.
    services.clock.advance(timedelta(seconds=1))

    await services.reconciler.reconcile()

    stored = await services.get(queue.id)
    assert stored.steps[0].status is StepStatus.ERROR
    assert stored.steps[0].error_message == "job vanished without reporting an end"
    assert stranger.name in services.launcher.deleted
    assert step.job_name not in services.launcher.deleted


async def test_a_restart_that_lost_many_workers_fails_their_steps_in_one_write(
    services: Services, single: dict[str, Any], historical: dict[str, Any]
) -> None:
    # P8's case: the workers died with the machine. One transaction per queue cost seconds per
    # thousand queues (each also writes its coverage ledger); one batch writes them all. A
    # pipeline with two vanished steps ends once, failed by the first.
    queues = [await services.start(single) for _ in range(5)] + [await services.start(historical)]
    for queue in queues:
        for index in (0, 1) if len(queue.steps) > 1 else (0,):
            await services.report(queue, index, "loading", records_written=1)
    services.launcher.jobs.clear()
    services.clock.advance(timedelta(seconds=1))
    writes: list[int] = []
    update_many = services.store.update_many

    async def counted(changes: Any) -> Any:
        writes.append(len(changes))
        return await update_many(changes)

    services.store.update_many = counted  # type: ignore[method-assign]

    await services.reconciler.reconcile()

    assert 6 in writes  # the six queues in one write
    stored = [await services.get(queue.id) for queue in queues]
    assert all(queue.status is QueueStatus.ERROR for queue in stored)
    pipeline = stored[-1]
    assert [s.status for s in pipeline.steps[:2]] == [StepStatus.ERROR, StepStatus.STOPPED]
    assert pipeline.steps[0].error_message == "job vanished without reporting an end"


async def test_reconcile_relaunches_a_step_whose_job_never_appeared(
    services: Services, single: dict[str, Any]
) -> None:
    queue = await services.start(single)
    services.launcher.jobs.clear()
    await services.reconciler.reconcile()  # within LAUNCH_GRACE_SECONDS: it may still appear
    assert services.launcher.targets() == ["loader-producer"]
    services.clock.advance(timedelta(minutes=5))
    await services.reconciler.reconcile()
    assert services.launcher.targets() == ["loader-producer", "loader-producer"]
    assert (await services.get(queue.id)).steps[0].status is StepStatus.LAUNCHING


async def test_a_launch_waiting_on_the_broker_is_neither_doubled_nor_stale(
    services: Services, historical: dict[str, Any]
) -> None:
    # The connectors' offsets take longer than LAUNCH_GRACE_SECONDS (a loaded broker). The
    # reconciler must not take the claimed steps for lost jobs and launch them beside the
    # start; and what ended meanwhile (a worker's report: another replica launched it) is not
    # launched when the broker answers.
    services.topics.hold(2)  # the start's two connectors
    start = asyncio.create_task(services.start(historical))
    await services.topics.held.wait()
    (queue,) = await services.store.list_active()
    services.clock.advance(timedelta(minutes=5))  # long past LAUNCH_GRACE_SECONDS
    await services.reconciler.reconcile()
    assert services.launcher.launched == []
    await services.report(queue, 0, "started")
    await services.report(queue, 0, "finished", records_written=10)

    services.topics.gate.set()
    await start

    assert sorted(spec.step_index for spec in services.launcher.launched) == [1, 2, 3]
    await services.reconciler.reconcile()
    assert sorted(spec.step_index for spec in services.launcher.launched) == [1, 2, 3]


async def test_reconcile_does_not_relaunch_a_step_of_a_queue_its_job_pass_just_failed(
    services: Services, historical: dict[str, Any]
) -> None:
    # One pass: step 0's job failed (the queue fails and its other steps stop) while step 1's
    # job never appeared. The second half of the pass must see the failed queue, not the
    # snapshot it read before, and launch nothing.
    queue = await services.start(historical)
    launched = (await services.get(queue.id)).steps
    first, second = launched[0], launched[1]
    services.launcher.jobs[first.job_name] = JobStatus(
        first.job_name, queue.id, 0, JobPhase.FAILED, message="OOMKilled"
    )
    services.launcher.jobs.pop(second.job_name)
    services.clock.advance(timedelta(minutes=5))  # long past LAUNCH_GRACE_SECONDS
    before = len(services.launcher.launched)

    await services.reconciler.reconcile()

    stored = await services.get(queue.id)
    assert stored.status is QueueStatus.ERROR
    assert stored.steps[0].error_message == "OOMKilled"
    assert stored.steps[1].status is StepStatus.STOPPED
    assert len(services.launcher.launched) == before


async def test_the_first_reconcile_pass_says_when_a_restart_has_caught_up(
    services: Services, single: dict[str, Any]
) -> None:
    await services.start(single)
    await services.start(single)
    with structlog.testing.capture_logs() as logs:
        loop = asyncio.create_task(services.reconciler.run())
        try:
            await wait_until_async(
                lambda: any(e["event"] == "start-up reconcile done" for e in logs),
                10,
                what="the start-up reconcile pass to be logged",
                detail=lambda: f"logged: {[e['event'] for e in logs]}",
            )
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
    done = [e for e in logs if e["event"] == "start-up reconcile done"]
    assert len(done) == 1  # once, not every period
    assert (done[0]["jobs"], done[0]["queues"]) == (2, 2)
    assert done[0]["seconds"] >= 0


async def test_a_stop_deadline_reaps_the_queue_once_the_clock_reaches_it(
    services: Services, historical: dict[str, Any]
) -> None:
    queue = await services.start(historical)
    stopping = await services.queues.stop(queue.id)
    assert stopping.status is QueueStatus.STOPPING
    assert services.deadlines.waiting == 1
    await wait_until_async(
        lambda: services.clock.sleepers == 1, 5, what="the stop deadline to sleep on the clock"
    )
    services.clock.advance(timedelta(seconds=29))  # the grace is 30 s
    assert services.clock.sleepers == 1  # not woken: its time is still to come
    assert (await services.get(queue.id)).status is QueueStatus.STOPPING
    services.clock.advance(timedelta(seconds=1))
    await _fired(services)
    stored = await services.get(queue.id)
    assert stored.status is QueueStatus.STOPPED
    assert sorted(services.launcher.deleted) == sorted(
        s.job_name for s in stored.steps if s.launched_at is not None
    )


async def test_a_thousand_stops_leave_no_timer_behind(
    services: Services, single: dict[str, Any]
) -> None:
    """Every stop used to leave its timer in the engine for the life of the process: a stop
    deadline is a task that is dropped once it has fired."""
    queues = [await services.start(single) for _ in range(10)]
    for _ in range(100):  # stopping again changes nothing, but waits for the deadline again
        for queue in queues:
            await services.queues.stop(queue.id)
    assert services.deadlines.waiting == 1000
    await wait_until_async(
        lambda: services.clock.sleepers == 1000,
        5,
        what="every stop deadline to sleep on the clock",
        detail=lambda: f"{services.clock.sleepers} sleep",
    )
    services.clock.advance(timedelta(seconds=30))
    await _fired(services)
    assert services.deadlines.waiting == 0
    assert services.clock.sleepers == 0
    leftovers = [t for t in asyncio.all_tasks() if "_reap_at" in repr(t.get_coro())]
    assert leftovers == []
    for queue in queues:
        assert (await services.get(queue.id)).status is QueueStatus.STOPPED


async def _fired(services: Services) -> None:
    """Until every stop deadline the clock has reached has been reaped."""
    while services.deadlines._waiting:
        await asyncio.gather(*services.deadlines._waiting)
