"""One real service for the contract tier (schemathesis and the stateful fuzz), auth on, called
with an admin token so that every route is exercised past its guard."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from queue_manager.domain.identity import new_token, token_hash
from tests.support.service import Service

ADMIN = new_token()


@pytest.fixture(scope="package")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    path: Path = tmp_path_factory.mktemp("contract")
    (path / "tokens").write_text(f"schemathesis admin {token_hash(ADMIN)}\n")
    env = {
        "LOCAL_WORKER_ARGS": "--duration 0.3",
        "AUTH_TOKENS_FILE": str(path / "tokens"),
        "STOP_GRACE_SECONDS": "1",
        "MAX_RUNNING_QUEUES": "2",
    }
    svc = Service(path / "svc", env=env, token=ADMIN).start()
    yield svc
    svc.stop()
    svc.kill_workers()
