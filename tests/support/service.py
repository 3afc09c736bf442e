"""Runs the real service as a subprocess, the way an operator does, for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson

from tests.support.processes import free_ports

T = TypeVar("T")


def free_port() -> int:
    return free_ports(1)[0]


def wait_for(check: Callable[[], T | None], timeout: float, every: float = 0.2) -> T:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (httpx.HTTPError, AssertionError, KeyError) as exc:
            last = exc
        time.sleep(every)
    raise TimeoutError(f"condition not met within {timeout} s (last error: {last!r})")


@dataclass
class Service:
    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    #: API token sent with every call that does not set its own Authorization header
    token: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        # Per port: replicas may share a data directory.
        return self.data_dir / f"service-{self.port}.log"

    def start(self, *, wait_ready: bool = True) -> Service:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "DATA_DIR": str(self.data_dir),
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
            "LOG_FORMAT": "json",
            "RECONCILE_SECONDS": "1",
            "LAUNCH_GRACE_SECONDS": "5",
            "LOCAL_WORKER_ARGS": "--duration 3",
            **self.env,
        }
        for name in ("KUBECONFIG", "KAFKA_BOOTSTRAP_SERVERS", "ARANGO_URL"):
            if name not in self.env:
                env.pop(name, None)
        log = open(self.log_path, "ab")  # noqa: SIM115 (closed with the process)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "queue_manager.app:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        if not wait_ready:
            return self
        try:
            wait_for(lambda: self.get("/health/ready").status_code == 200, 30)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"service did not start:\n{self.log_tail()}") from None
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    # -- HTTP ---------------------------------------------------------------------------------

    def _auth(self, kw: dict[str, Any]) -> dict[str, Any]:
        headers = dict(kw.pop("headers", None) or {})
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return {**kw, "headers": headers}

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10, **self._auth(kw))

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.post(self.url + path, timeout=10, **self._auth(kw))

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.delete(self.url + path, timeout=10, **self._auth(kw))

    def patch(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.patch(self.url + path, timeout=10, **self._auth(kw))

    def start_queue(self, body: dict[str, Any]) -> str:
        answer = self.post("/queues/start", json=body)
        assert answer.status_code == 200, answer.text
        queue_id: str = answer.json()["data"]["queue_id"]
        return queue_id

    def queue(self, queue_id: str) -> dict[str, Any]:
        answer = self.get(f"/queues/{queue_id}")
        assert answer.status_code == 200, answer.text
        data: dict[str, Any] = answer.json()["data"]
        return data

    def wait_status(self, queue_id: str, statuses: set[str], timeout: float) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            queue = self.queue(queue_id)
            return queue if queue["status"] in statuses else None

        try:
            return wait_for(check, timeout)
        except TimeoutError:
            raise AssertionError(
                f"queue {queue_id} not in {statuses} after {timeout} s: "
                f"{self.queue(queue_id)}\n{self.log_tail()}"
            ) from None

    # -- local workers ------------------------------------------------------------------------

    def kill_workers(self) -> None:
        for record in (self.data_dir / "jobs").glob("*.json"):
            pid = orjson.loads(record.read_bytes()).get("pid")
            if pid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)

    def job_record(self, job_name: str) -> dict[str, Any]:
        data: dict[str, Any] = orjson.loads(
            (self.data_dir / "jobs" / f"{job_name}.json").read_bytes()
        )
        return data


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except (FileNotFoundError, ProcessLookupError):
        return False
