"""What only the embedded launcher does: worker processes on this machine
(docs/operations.md)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from queue_manager.adapters.local_launcher import LocalLauncher
from queue_manager.domain.errors import DependencyUnavailable
from tests.launcher.harness import spec


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
