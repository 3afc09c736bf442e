"""Shared fixtures. Real things only: SQLite files, worker subprocesses, a real server."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

# One Kafka broker and one kube-apiserver per session, shared by every directory that needs them.
pytest_plugins = ["tests.support.kafka_fixtures", "tests.support.kube_fixtures"]

EXAMPLES = Path(__file__).parent.parent / "examples"


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
