"""What every launcher does alike (docs/architecture.md, docs/operations.md): the services
cannot tell them apart."""

from __future__ import annotations

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
