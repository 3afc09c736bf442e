"""`make run PORT=… HOST=…`, as the README's set-up says: the service answers where it was told.

The Makefile's `run` passes HOST and PORT (defaults 127.0.0.1 and 8000) to `queue-manager serve`;
here it really serves on a free port, with its data in a temporary directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.cli.helpers import clean_env, free_port
from tests.docs.markdown import ROOT
from tests.support.waiting import wait_until

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _make(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-n", "run", *args],
        cwd=ROOT,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )


def _serve_line(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout.strip().splitlines()[-1]


def test_make_run_defaults_and_overrides() -> None:
    assert _serve_line(_make()).endswith("serve --host '127.0.0.1' --port '8000'")
    assert _serve_line(_make("PORT=8080", "HOST=0.0.0.0")).endswith(
        "serve --host '0.0.0.0' --port '8080'"
    )
    # the service's own variables, from the environment, count as well
    assert _serve_line(_make(PORT="9001")).endswith("serve --host '127.0.0.1' --port '9001'")


def test_make_run_serves_on_the_given_port(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "make-run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["make", "--no-print-directory", "run", f"PORT={port}", "HOST=127.0.0.1"],
            cwd=ROOT,
            env=clean_env(DATA_DIR=str(tmp_path / "data"), LOG_FORMAT="json"),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"make run exited with {proc.returncode}:\n{log.read_text()}")
            return httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).is_success

        wait_until(ready, 60, what=f"make run on port {port}", every=0.2, ignore=(httpx.HTTPError,))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
