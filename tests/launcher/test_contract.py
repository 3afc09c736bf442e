"""What every launcher does alike (docs/architecture.md, docs/operations.md): the services
cannot tell them apart."""

from __future__ import annotations

import uuid

import pytest

from queue_manager.ports import JobPhase
from tests.launcher.harness import Harness, Watcher, spec


async def test_queue_ids_sharing_their_first_8_characters_get_distinct_jobs_that_both_run(
    harness: Harness,
) -> None:
    first = spec("0f9d6c1e-7c1b-4c9e-9a0e-2f4b8f1d2a3c")
    second = spec("0f9d6c1e-0000-4000-8000-000000000000")
    assert first.name != second.name
    assert first.name.startswith("qm-0f9d6c1e") and second.name.startswith("qm-0f9d6c1e")
    launcher = await harness.new_launcher()
    async with Watcher(launcher) as watcher:
        await launcher.launch(first)
        await launcher.launch(second)
        jobs = {job.name: job for job in await launcher.list_jobs()}
        assert {name: (j.queue_id, j.phase) for name, j in jobs.items()} == {
            first.name: (first.queue_id, JobPhase.ACTIVE),
            second.name: (second.queue_id, JobPhase.ACTIVE),
        }
        for job in (first, second):
            await harness.end(job.name, ok=True)
            done = await watcher.wait_for(job.name, JobPhase.SUCCEEDED)
            assert done.queue_id == job.queue_id


async def test_a_launched_job_is_listed_running_and_launching_it_again_changes_nothing(
    harness: Harness,
) -> None:
    launcher = await harness.new_launcher()
    job = spec(str(uuid.uuid4()), index=3)
    await launcher.launch(job)
    await launcher.launch(job)  # a retried launch: same as a 409 from Kubernetes
    (listed,) = await launcher.list_jobs()
    assert (listed.name, listed.queue_id, listed.step_index, listed.phase) == (
        job.name,
        job.queue_id,
        3,
        JobPhase.ACTIVE,
    )
    assert listed.attempts == 1


@pytest.mark.parametrize("ok", [True, False], ids=["success", "failure"])
async def test_how_a_job_ended_is_watched_and_listed(harness: Harness, ok: bool) -> None:
    launcher = await harness.new_launcher()
    job = spec(str(uuid.uuid4()))
    phase = JobPhase.SUCCEEDED if ok else JobPhase.FAILED
    async with Watcher(launcher) as watcher:
        await launcher.launch(job)
        await harness.end(job.name, ok=ok)
        ended = await watcher.wait_for(job.name, phase)
    assert (ended.queue_id, ended.step_index) == (job.queue_id, 0)
    # A failure says why (the step's error message); a success says nothing.
    assert bool(ended.message) is not ok
    (listed,) = await launcher.list_jobs()
    assert (listed.name, listed.phase) == (job.name, phase)


async def test_delete_removes_a_running_job_for_every_instance_and_is_idempotent(
    harness: Harness,
) -> None:
    launcher = await harness.new_launcher()
    job, kept = spec(str(uuid.uuid4())), spec(str(uuid.uuid4()))
    await launcher.launch(job)
    await launcher.launch(kept)
    await launcher.delete(job.name)
    assert [j.name for j in await launcher.list_jobs()] == [kept.name]
    other = await harness.new_launcher()
    assert [j.name for j in await other.list_jobs()] == [kept.name]
    await launcher.delete(job.name)  # already gone: a success
    await launcher.delete(spec(str(uuid.uuid4())).name)  # never existed: a success


async def test_a_new_instance_adopts_the_jobs_and_follows_the_running_ones(
    harness: Harness,
) -> None:
    first = await harness.new_launcher()
    queue_id = str(uuid.uuid4())
    running, failed = spec(queue_id, 0), spec(queue_id, 1)
    async with Watcher(first) as watcher:
        await first.launch(running)
        await first.launch(failed)
        await harness.end(failed.name, ok=False)
        await watcher.wait_for(failed.name, JobPhase.FAILED)
    await first.stop()  # the service restarts; its jobs do not

    second = await harness.new_launcher()
    adopted = {j.name: (j.queue_id, j.step_index, j.phase) for j in await second.list_jobs()}
    assert adopted == {
        running.name: (queue_id, 0, JobPhase.ACTIVE),
        failed.name: (queue_id, 1, JobPhase.FAILED),
    }
    async with Watcher(second) as watcher:
        await harness.end(running.name, ok=True)
        await watcher.wait_for(running.name, JobPhase.SUCCEEDED)
    await second.delete(running.name)
    assert [j.name for j in await second.list_jobs()] == [failed.name]


async def test_list_reports_our_jobs_only(harness: Harness) -> None:
    launcher = await harness.new_launcher()
    await harness.add_foreign_job()
    ours = [spec(str(uuid.uuid4()), 0), spec(str(uuid.uuid4()), 5)]
    for job in ours:
        await launcher.launch(job)
    listed = {(j.name, j.queue_id, j.step_index) for j in await launcher.list_jobs()}
    assert listed == {(j.name, j.queue_id, j.step_index) for j in ours}
