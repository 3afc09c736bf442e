"""ArangoDB failures seen from the adapter, runnable without a server.

Whatever goes wrong leaves the store as `DependencyUnavailable("store", …)` (API 503, readiness
names it), in one clear line, and never with the password.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from queue_manager.adapters.arango_store import ArangoStore
from queue_manager.adapters.arango_store.errors import ErrorScrubber
from queue_manager.domain.errors import DependencyUnavailable, Misconfigured
from queue_manager.settings import Settings

PASSWORD = "s3cret-Pa55word"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def refusing_server() -> AsyncIterator[str]:
    """A real HTTP server answering every request as ArangoDB does for bad credentials."""

    async def unauthorized(request: web.Request) -> web.Response:
        return web.json_response(
            {"error": True, "code": 401, "errorNum": 11, "errorMessage": "not authorized"},
            status=401,
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", unauthorized)
    runner = web.AppRunner(app)
    await runner.setup()
    port = _free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_unreachable_server_is_dependency_unavailable() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    store = ArangoStore(url, "streamforge", "root", PASSWORD, connect_timeout=2)
    with pytest.raises(DependencyUnavailable) as caught:
        await store.open()
    err = caught.value
    assert err.dependency == "store"
    assert "cannot connect to ArangoDB at " + url in err.message
    assert PASSWORD not in err.message and PASSWORD not in str(err.data)
    await store.close()  # closing a store that never opened is harmless


async def test_bad_credentials_are_one_clear_line(refusing_server: str) -> None:
    store = ArangoStore(refusing_server, "streamforge", "qm", PASSWORD)
    with pytest.raises(Misconfigured) as caught:
        await store.open()
    message = str(caught.value)
    assert "rejected user 'qm' on database 'streamforge' (HTTP 401)" in message
    assert "ARANGO_USER / ARANGO_PASSWORD" in message
    assert "\n" not in message and PASSWORD not in message


async def test_a_store_that_is_not_open_says_so() -> None:
    store = ArangoStore("http://127.0.0.1:1", "streamforge", "root", PASSWORD)
    with pytest.raises(DependencyUnavailable, match="not open"):
        await store.get("x")
    with pytest.raises(DependencyUnavailable, match="not open"):
        await store.ping()


def test_from_settings_uses_the_platform_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARANGO_URL", "http://arango-a:8529,http://arango-b:8529")
    monkeypatch.setenv("ARANGO_DB", "sf")
    monkeypatch.setenv("ARANGO_USER", "qm")
    monkeypatch.setenv("ARANGO_PASSWORD", PASSWORD)
    store = ArangoStore.from_settings(Settings(_env_file=None))
    assert store.name == "arango"
    assert store.database == "sf"
    assert PASSWORD not in repr(store)
    assert "http://arango-a:8529,http://arango-b:8529" in repr(store)


def test_password_never_reaches_an_error_detail() -> None:
    errors = ErrorScrubber("qm", PASSWORD, "sf")
    err = errors.unavailable("read", OSError(f"boom http://qm:{PASSWORD}@arango:8529 {PASSWORD}"))
    assert PASSWORD not in err.message
    assert "***" in err.message


async def test_service_with_bad_arango_credentials_stops_with_one_line(
    refusing_server: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "STORE_BACKEND": "arango",
        "ARANGO_URL": refusing_server,
        "ARANGO_USER": "qm",
        "ARANGO_PASSWORD": PASSWORD,
        "DATA_DIR": str(tmp_path),
        "PORT": "0",
        "LOG_FORMAT": "console",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "queue_manager.cli.main", "serve",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    output = out.decode()
    assert proc.returncode != 0
    assert "cannot start: " in output and "ARANGO_USER / ARANGO_PASSWORD" in output
    assert "Traceback" not in output and PASSWORD not in output
