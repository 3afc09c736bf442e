"""What only the embedded launcher does: worker processes on this machine
(docs/operations.md)."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
import pytest

from queue_manager.adapters.local import LocalLauncher
from queue_manager.domain.errors import DependencyUnavailable
from tests.launcher.harness import LocalHarness, spec


async def test_a_worker_that_cannot_start_is_unavailable_and_leaves_no_job(
    tmp_path: Path,
) -> None:
    launcher = LocalLauncher(
        tmp_path / "jobs",
        worker_env=lambda _queue_id: {},
        command=[str(tmp_path / "no-such-worker")],
    )
    await launcher.start()
    try:
        job = spec(str(uuid.uuid4()))
        with pytest.raises(DependencyUnavailable, match="cannot start job"):
            await launcher.launch(job)
        # Nothing half made: the reconciler's next launch really tries again.
        assert await launcher.list_jobs() == []
        with pytest.raises(DependencyUnavailable, match="cannot start job"):
            await launcher.launch(job)
    finally:
        await launcher.stop()


def _running(pid: int) -> bool:
    """True while `pid` is a live process (a zombie awaiting its reaper is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return False
    return stat.rsplit(b")", 1)[-1].split()[0] != b"Z"


async def test_delete_ends_the_worker_process(tmp_path: Path) -> None:
    harness = LocalHarness(tmp_path)
    try:
        launcher = await harness.new_launcher()
        job = spec(str(uuid.uuid4()))
        await launcher.launch(job)
        pid = orjson.loads((harness.jobs / f"{job.name}.json").read_bytes())["pid"]
        assert _running(pid)
        await launcher.delete(job.name)
        # delete returns once the worker is gone; no record of it stays behind.
        assert not _running(pid)
        assert not (harness.jobs / f"{job.name}.json").exists()
    finally:
        await harness.close()
