from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from queue_manager.api.worker_auth import WorkerTokens
from queue_manager.app import build_adapters, create_app
from queue_manager.settings import Settings


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The real app (SQLite file, in-process bus, local launcher) driven in-process."""
    settings = Settings(data_dir=tmp_path, local_worker_args="--duration 1", _env_file=None)
    # Built here, the way create_app would, so that a test can reach the real adapters.
    adapters = build_adapters(settings, WorkerTokens.from_file(tmp_path / "worker-token.secret"))
    app = create_app(settings, adapters)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://qm") as http:
            http.adapters = adapters  # type: ignore[attr-defined]
            yield http
