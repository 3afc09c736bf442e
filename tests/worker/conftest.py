"""A small real HTTP service speaking the embedded worker protocol, and worker subprocesses."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.waiting import wait_until

TOKEN = "test-worker-token-7f3a"
TIME_RANGE = "2024-06-01:2024-06-03"

# Every variable the worker reads; scrubbed from the inherited environment so the developer's
# shell cannot change what a test sees.
WORKER_VARIABLES = (
    "QUEUE_ID", "SYMBOL", "TYPE", "TIME_RANGE", "KAFKA_TOPIC", "COLLECTION_NAME",
    "TELEMETRY_PRODUCER_ID", "QUEUE_CONTROL_TOPIC", "QUEUE_EVENTS_TOPIC",
    "KAFKA_BOOTSTRAP_SERVERS", "KAFKA_USER", "KAFKA_PASSWORD", "CA_PATH", "ARANGO_URL",
    "ARANGO_DB", "INTERVAL", "COLLECTION_INPUTS", "COLLECTION_OUTPUT", "GRAPH_COLLECTION",
    "MODEL_OUTPUT", "INFERENCE_INTERVAL", "SOURCE", "QM_URL", "QM_WORKER_TOKEN", "QM_EXIT_FILE",
    "QM_WORKER_DURATION", "QM_WORKER_TICK", "QM_WORKER_FAIL_AFTER", "QM_WORKER_RECORDS_PER_TICK",
)  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None
    body: dict[str, Any] | None
    answered: int
    at: float = field(default_factory=time.monotonic)


class FakeService:
    """Records what workers send and serves the commands a test queues up."""

    def __init__(self, port: int | None = None, token: str = TOKEN) -> None:
        self.port = port or free_port()
        self.token = token
        self.requests: list[Received] = []
        self.stopped_queues: set[str] = set()
        self.pinged_queues: set[str] = set()
        # Queues whose run is over: their workers' credentials are refused (403).
        self.ended_queues: set[str] = set()
        # Status codes answered to the next telemetry POSTs, before falling back to 200.
        self.telemetry_answers: list[int] = []
        self.telemetry_default = 200
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                service._handle(self, "POST", json.loads(raw) if raw else None)

            def do_GET(self) -> None:
                service._handle(self, "GET", None)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _handle(
        self, handler: BaseHTTPRequestHandler, method: str, body: dict[str, Any] | None
    ) -> None:
        url = urlsplit(handler.path)
        query = parse_qs(url.query)
        authorization = handler.headers.get("Authorization")
        data: Any = None
        with self._lock:
            if authorization != f"Bearer {self.token}":
                code, message = 401, "Invalid worker token"
            elif method == "POST" and url.path == "/internal/telemetry":
                code = self.telemetry_answers.pop(0) if self.telemetry_answers else None
                code = code or self.telemetry_default
                message = "Telemetry accepted" if code < 300 else "Try again"
            elif method == "GET" and query.get("queue_id", [""])[0] in self.ended_queues:
                code, message = 403, "step 0 (loader-producer) run 0 has ended (error)"
            elif method == "GET" and url.path == "/internal/commands":
                queue_id = query.get("queue_id", [""])[0]
                commands = []
                if queue_id in self.stopped_queues:
                    commands.append({"queue_id": queue_id, "command": "stop", "payload": {}})
                if queue_id in self.pinged_queues:
                    self.pinged_queues.discard(queue_id)
                    commands.append({"queue_id": queue_id, "command": "ping", "payload": {}})
                code, message, data = 200, "Commands", {"commands": commands}
            else:
                code, message = 404, "Not found"
            self.requests.append(Received(method, url.path, query, authorization, body, code))
        payload = json.dumps(
            {"status": "success" if code < 300 else "error", "message": message, "data": data}
        ).encode()
        handler.send_response(code)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def request_stop(self, queue_id: str) -> None:
        with self._lock:
            self.stopped_queues.add(queue_id)

    def end_run(self, queue_id: str) -> None:
        with self._lock:
            self.ended_queues.add(queue_id)

    def request_ping(self, queue_id: str) -> None:
        with self._lock:
            self.pinged_queues.add(queue_id)

    def telemetry(self, *, accepted_only: bool = True) -> list[dict[str, Any]]:
        """Telemetry bodies in arrival order (by default only those answered 2xx)."""
        with self._lock:
            return [
                r.body
                for r in self.requests
                if r.path == "/internal/telemetry"
                and r.body is not None
                and (r.answered < 300 or not accepted_only)
            ]

    def events(self) -> list[str]:
        return [body["event"] for body in self.telemetry()]

    def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 15.0, *, what: str | None = None
    ) -> None:
        wait_until(
            predicate,
            timeout,
            every=0.02,
            what=what,
            detail=lambda: f"telemetry so far: {self.events()}",
        )


@pytest.fixture
def service() -> Iterator[FakeService]:
    fake = FakeService()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def service_factory() -> Iterator[Callable[..., FakeService]]:
    """Services a test starts itself (or not yet: a service that is down)."""
    made: list[FakeService] = []

    def make(token: str = TOKEN) -> FakeService:
        fake = FakeService(token=token)
        made.append(fake)
        return fake

    yield make
    for fake in made:
        fake.stop()


def base_env(queue_id: str, *, url: str | None, target: str = "loader-producer") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in WORKER_VARIABLES}
    env.update(
        QUEUE_ID=queue_id,
        SYMBOL="BTCUSDT",
        TYPE="api_candles_5m",
        TIME_RANGE=TIME_RANGE,
        TELEMETRY_PRODUCER_ID=f"{target}-{queue_id}-0",
        KAFKA_TOPIC=f"{queue_id}.api_candles_5m",
        COLLECTION_NAME="btc_candles_5m_2024_06_01_2024_06_03",
        PYTHONUNBUFFERED="1",
    )
    if url is not None:
        env.update(QM_URL=url, QM_WORKER_TOKEN=TOKEN)
    return env


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    queue_id: str
    stderr_path: Path
    exit_file: Path

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"worker still running after {timeout}s; stderr:\n{self.stderr()}"
            ) from None

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def exit_record(self) -> dict[str, Any]:
        record: dict[str, Any] = json.loads(self.exit_file.read_text())
        return record


SpawnWorker = Callable[..., WorkerProcess]


@pytest.fixture
def spawn_worker(tmp_path: Path) -> Iterator[SpawnWorker]:
    processes: list[WorkerProcess] = []

    def spawn(
        target: str,
        *args: str,
        url: str | None = None,
        env: dict[str, str | None] | None = None,
        queue_id: str | None = None,
    ) -> WorkerProcess:
        queue_id = queue_id or str(uuid.uuid4())
        full_env = base_env(queue_id, url=url, target=target)
        exit_file = tmp_path / f"{queue_id}.exit.json"
        full_env["QM_EXIT_FILE"] = str(exit_file)
        for key, value in (env or {}).items():
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = value
        stderr_path = tmp_path / f"{queue_id}.stderr"
        with stderr_path.open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "queue_manager.worker.reference", target, *args],
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=subprocess.STDOUT,
            )
        worker = WorkerProcess(process, queue_id, stderr_path, exit_file)
        processes.append(worker)
        return worker

    yield spawn
    for worker in processes:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait(10)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)
