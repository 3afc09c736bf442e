"""The CLI against the real service (no mocks): one `queue-manager serve` per module."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
import pytest

from tests.cli.helpers import Server, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("cli-service"))
    try:
        yield srv
    finally:
        # Stop what is still running, so no worker is left behind.
        with contextlib.suppress(httpx.HTTPError, ValueError):
            for status in ("pending", "loading"):
                answer = httpx.get(f"{srv.url}/queues", params={"status": status}, timeout=5)
                for queue in answer.json().get("data") or []:
                    httpx.post(
                        f"{srv.url}/queues/stop",
                        params={"queue_id": queue["id"], "force": "true"},
                        timeout=5,
                    )
        srv.terminate()
        srv.kill_workers()
