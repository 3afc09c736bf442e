"""The clean-up every test gets (tests/conftest.py): the local workers a test's service launched
die when the test ends, whatever runs them — our SDK's workers and the platform-like fleet
workers, which never exit by themselves — and a process that merely got a recorded pid back is
left alone."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import orjson

from tests.support.service import kill_workers_under


def _job_record(root: Path, name: str, pid: int) -> None:
    jobs = root / "svc" / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    (jobs / f"{name}.json").write_bytes(orjson.dumps({"pid": pid}))


def test_a_tests_workers_are_killed_and_an_unrelated_process_is_not(tmp_path: Path) -> None:
    # a worker the way the local launcher starts one: its job's name in its environment, its
    # own process group, a command line that names no queue_manager module (a fleet worker)
    env = {**os.environ, "QM_JOB_NAME": "qm-abc-0-loader-producer"}
    worker = subprocess.Popen(["sleep", "300"], env=env, start_new_session=True)
    stranger = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        _job_record(tmp_path, "qm-abc-0-loader-producer", worker.pid)
        # a record whose worker ended long ago, its pid now another process's
        _job_record(tmp_path, "qm-old-1-arango-connector", stranger.pid)
        kill_workers_under(tmp_path)
        assert worker.wait(timeout=10) == -9
        assert stranger.poll() is None
    finally:
        for process in (worker, stranger):
            process.kill()
            process.wait()
