"""docs/operations.md "Error classes" and "Timeouts" for local jobs: the launcher classes how a
worker process ended (real processes: the contract suite's stand-in worker)."""

from __future__ import annotations

import dataclasses
import os
import signal
import uuid
from pathlib import Path

import orjson

from queue_manager.ports import JobPhase, JobStatus, Launcher
from tests.launcher.harness import LocalHarness, eventually, spec


async def _ended(launcher: Launcher, name: str) -> JobStatus:
    found: list[JobStatus] = []

    async def ended() -> bool:
        found[:] = [j for j in await launcher.list_jobs() if j.name == name]
        return bool(found) and found[0].phase is not JobPhase.ACTIVE

    await eventually(ended, 15)
    return found[0]


def _pid(harness: LocalHarness, name: str) -> int:
    pid: int = orjson.loads((harness.jobs / f"{name}.json").read_bytes())["pid"]
    return pid


async def test_a_worker_past_its_timeout_is_killed_and_fails_as_timeout(tmp_path: Path) -> None:
    harness = LocalHarness(tmp_path)
    try:
        launcher = await harness.new_launcher()
        # Retries do not extend it: the timeout counts from the first start, as on Kubernetes.
        job = dataclasses.replace(spec(str(uuid.uuid4())), timeout=0.5, max_retries=2)
        await launcher.launch(job)
        pid = _pid(harness, job.name)
        status = await _ended(launcher, job.name)
        assert status.phase is JobPhase.FAILED
        assert status.error_class == "timeout"
        assert status.message == "timed out: ran longer than its timeout of 0.5 s"
        assert status.attempts == 1
        assert _zombie_or_gone(pid)
        # A restarted service reads the class from the job's record.
        again = await harness.new_launcher()
        (listed,) = [j for j in await again.list_jobs() if j.name == job.name]
        assert listed.error_class == "timeout"
    finally:
        await harness.close()


async def test_a_worker_killed_by_a_signal_fails_as_infrastructure(tmp_path: Path) -> None:
    harness = LocalHarness(tmp_path)
    try:
        launcher = await harness.new_launcher()
        job = spec(str(uuid.uuid4()))
        await launcher.launch(job)
        os.kill(_pid(harness, job.name), signal.SIGKILL)  # as the OOM killer does
        status = await _ended(launcher, job.name)
        assert status.phase is JobPhase.FAILED
        assert status.error_class == "infrastructure"
        assert status.message is not None and "SIGKILL" in status.message
    finally:
        await harness.close()


async def test_a_worker_exiting_in_error_has_no_launcher_class(tmp_path: Path) -> None:
    harness = LocalHarness(tmp_path)
    try:
        launcher = await harness.new_launcher()
        job = spec(str(uuid.uuid4()))
        await launcher.launch(job)
        await harness.end(job.name, ok=False)
        status = await _ended(launcher, job.name)
        assert status.phase is JobPhase.FAILED
        assert status.error_class is None  # the worker's own report classes it
    finally:
        await harness.close()


def _zombie_or_gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return True
    return stat.rsplit(b")", 1)[-1].split()[0] == b"Z"
