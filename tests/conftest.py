"""Shared fixtures. Real things only: SQLite files, worker subprocesses, a real server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

# One Kafka broker and one kube-apiserver per session, shared by every directory that needs them.
pytest_plugins = ["tests.support.kafka_fixtures", "tests.support.kube_fixtures"]

EXAMPLES = Path(__file__).parent.parent / "examples"


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
