from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from queue_manager.app import create_app
from queue_manager.settings import Settings


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The real app (SQLite file, in-process bus, local launcher) driven in-process."""
    settings = Settings(data_dir=tmp_path, local_worker_args="--duration 1", _env_file=None)
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://qm") as http:
            http.app = app  # type: ignore[attr-defined]  # lets a test reach the real adapters
            yield http
