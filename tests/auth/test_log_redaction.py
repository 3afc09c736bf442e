"""No credential reaches a log, whatever a client puts in a URL (issue 27, point 4).

A token in a WebSocket URL is refused, but uvicorn writes the request line of every upgrade
(`"WebSocket /ws/topic?token=…" 403`) and, when the access log is on, of every request: the query
string's values, and anything shaped like a credential, must be gone from what it writes.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import httpx
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from queue_manager.domain.identity import new_token, token_hash
from tests.cli.helpers import start_server

#: names a client might put a credential under, each with a value that must never be logged
CANARIES = {
    "access_token": "canary-access-token-3f9a",
    "password": "canary-password-81c2",
    "secret": "canary-secret-0d7e",
    "key": "canary-key-5a44",
    "api_key": "canary-api-key-c611",
    "id_token": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjYW5hcnkifQ.c2lnbmF0dXJlLWNhbmFyeQ",
}


def _upgrade(url: str) -> None:
    """Open and drop a WebSocket; whether it is refused before or after the upgrade."""
    refused = (ConnectionClosed, InvalidStatus, OSError, TimeoutError)
    with contextlib.suppress(*refused), connect(url, open_timeout=5) as socket:
        socket.recv(timeout=5)


def test_credentials_in_urls_never_reach_the_service_log(tmp_path: Path) -> None:
    admin = new_token()
    (tmp_path / "tokens").write_text(f"root admin {token_hash(admin)}\n")
    server = start_server(tmp_path, AUTH_TOKENS_FILE=str(tmp_path / "tokens"))
    secrets = {"token": admin, **CANARIES}
    ws = server.url.replace("http://", "ws://")
    try:
        for name, value in secrets.items():
            _upgrade(f"{ws}/ws/topic?queue_id=q1&{name}={value}")
            httpx.get(f"{server.url}/queues?{name}={value}&limit=5", timeout=5)
            httpx.get(f"{server.url}/nowhere?{name}={value}", timeout=5)
        _upgrade(f"{ws}/ws/topic?{admin}")  # a bare value, no name
        _upgrade(f"{ws}/ws/topic?odd%20name={admin}")
        _upgrade(f"{ws}/ws/{admin}")  # in the path of a route that does not exist
        # A valid credential still gets in (the subprotocol pair), and is not logged either.
        with connect(f"{ws}/ws/topic", subprotocols=["bearer", admin], open_timeout=5) as ok:  # type: ignore[list-item]
            assert ok.subprotocol == "bearer"
    finally:
        server.terminate()
        server.kill_workers()
    log = server.log_path.read_text(errors="replace")
    leaked = [name for name, value in secrets.items() if value in log]
    assert leaked == [], f"credentials in the log: {leaked}"
    # The lines were written, only without the values: the test looked at real output.
    assert '"WebSocket /ws/topic?queue_id=***&token=***' in log, log[-3000:]


#: uvicorn's access line as uvicorn formats it, once an operator turns the access log on, and
#: an HTTP client library's request line, both through the service's logging set-up
ACCESS_LINES = """
import logging, sys
from queue_manager.observability import logging as qm_logging

token = sys.argv[1]
qm_logging.configure("INFO", "json")
access = logging.getLogger("uvicorn.access")
access.setLevel(logging.INFO)
access.info(
    '%s - "%s %s HTTP/%s" %d',
    "10.0.0.7:51234",
    "GET",
    f"/queues?status=loading&access_token={token}&Authorization=Bearer%20{token}",
    "1.1",
    401,
)
logging.getLogger("httpx").info(f'HTTP Request: GET http://qm/queues?x={token} "200 OK"')
"""


def test_the_access_log_keeps_query_names_not_values() -> None:
    token = new_token()
    done = subprocess.run(
        [sys.executable, "-c", ACCESS_LINES, token], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert token not in done.stderr
    assert "GET /queues?status=***&access_token=***&Authorization=***" in done.stderr
    assert "HTTP Request: GET http://qm/queues?x=***" in done.stderr
