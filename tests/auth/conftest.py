from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from queue_manager.domain.identity import new_token, token_hash
from tests.support.service import Service


@pytest.fixture
def admin_token() -> str:
    return new_token()


@pytest.fixture
def secured(tmp_path: Path, admin_token: str) -> Iterator[Callable[..., Service]]:
    """Start services with auth on: AUTH_TOKENS_FILE holds `root`, an admin, whose token every
    helper call sends by default. Replicas share `tmp_path/data` unless told otherwise."""
    (tmp_path / "tokens").write_text(f"root admin {token_hash(admin_token)}\n")
    started: list[Service] = []

    def start(data: str = "data", **env: str) -> Service:
        settings = {
            "AUTH_TOKENS_FILE": str(tmp_path / "tokens"),
            "AUTH_REFRESH_SECONDS": "1",
            "AUTH_SESSION_SECRET": "shared-by-the-replicas-of-this-test",
            **env,
        }
        service = Service(tmp_path / data, env=settings, token=admin_token).start()
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()
    for service in started:
        service.kill_workers()
