"""Shared fixtures. Real things only: SQLite files, worker subprocesses, a real server."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.service import kill_workers_under

# One Kafka broker and one kube-apiserver per session, shared by every directory that needs them.
pytest_plugins = ["tests.support.kafka_fixtures", "tests.support.kube_fixtures"]

EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.fixture(autouse=True)
def _no_worker_outlives_its_test(tmp_path: Path) -> Iterator[None]:
    """A worker launched for a test by an app that is gone reports to nobody and retries for
    its delivery deadline (2 min): a tier's worth of them at once loaded the machine enough to
    fail the tests after it. The test's own workers end with it."""
    yield
    kill_workers_under(tmp_path)


def pytest_unconfigure(config: pytest.Config) -> None:
    """An SQLite connection left open keeps a thread that Python waits for at exit: the run would
    hang after its summary until CI killed it (it did once). Name the leak and fail instead."""
    leaked = [
        thread
        for thread in threading.enumerate()
        if getattr(getattr(thread, "_target", None), "__name__", "") == "_connection_worker_thread"
    ]
    if leaked:
        sys.stderr.write(
            f"\n{len(leaked)} SQLite connection(s) never closed (aiosqlite threads "
            f"{', '.join(t.name for t in leaked)}): a store or a test does not close what it "
            "opened. Failing the run rather than hanging on them.\n"
        )
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(1)


def load_example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return data


@pytest.fixture
def historical() -> dict[str, Any]:
    return load_example("historical")


@pytest.fixture
def realtime() -> dict[str, Any]:
    return load_example("realtime")


@pytest.fixture
def single() -> dict[str, Any]:
    return load_example("single")
