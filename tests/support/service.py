"""Runs the real service as a subprocess, the way an operator does, for end-to-end tests (and,
with its own settings, for the benchmarks in bench/)."""

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
from tests.support.waiting import wait_until

T = TypeVar("T")

#: what a check against a service still on its way may raise: "not yet", not a failure
NOT_YET = (httpx.HTTPError, AssertionError, KeyError)

#: the settings every test runs the service with unless it sets its own
TEST_DEFAULTS = {
    "LOG_FORMAT": "json",
    "RECONCILE_SECONDS": "1",
    "LAUNCH_GRACE_SECONDS": "5",
    "LOCAL_WORKER_ARGS": "--duration 3",
}
#: taken from the shell only when set in `env`: a test never reaches a cluster, broker or
#: database by accident
UNSET = ("KUBECONFIG", "KAFKA_BOOTSTRAP_SERVERS", "ARANGO_URL")


def free_port() -> int:
    return free_ports(1)[0]


def wait_for(
    check: Callable[[], T | None], timeout: float, every: float = 0.2, *, what: str | None = None
) -> T:
    """tests.support.waiting.wait_until for a check against a service: an HTTP error, a failed
    assertion or a missing key means "not yet"."""
    return wait_until(check, timeout, every=every, what=what, ignore=NOT_YET)


#: a guard against a hung service, not a measure: a start waits on the broker for its
#: connectors' offsets (a few round trips over SASL_SSL, slow on a loaded machine)
HTTP_TIMEOUT = 60

class _Exited(Exception):
    """The service process ended while it was awaited."""


@dataclass
class Service:
    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    #: API token sent with every call that does not set its own Authorization header
    token: str | None = None
    # -- how it is run: the defaults are the tests'; the benchmarks choose their own ----------
    #: the ASGI app (`module:attribute`); with `factory`, a function that builds it
    app: str = "queue_manager.app:create_app"
    factory: bool = True
    #: settings under `env` (which wins)
    defaults: dict[str, str] = field(default_factory=lambda: dict(TEST_DEFAULTS))
    #: variables of the shell not passed on unless `env` sets them
    unset: tuple[str, ...] = UNSET
    #: more `uvicorn` options
    uvicorn_args: tuple[str, ...] = ()
    cwd: Path | None = None
    ready_path: str = "/health/ready"
    ready_timeout: float = 30
    ready_every: float = 0.2
    #: in a session of its own: a stop signals its whole process group
    own_session: bool = False
    stop_timeout: float = 15
    #: leaving a `with` block also ends the local workers it started
    reap_workers: bool = True
    #: seconds from the spawn to the first 200 on `ready_path` (set by `start`)
    ready_after: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "the service is not running"
        return self.proc.pid

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
            **self.defaults,
            **self.env,
        }
        for name in self.unset:
            if name not in self.env:
                env.pop(name, None)
        command = [sys.executable, "-m", "uvicorn"]
        command += ["--factory"] if self.factory else []
        command += [self.app, "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--log-level", "warning", *self.uvicorn_args]
        log = open(self.log_path, "ab")  # noqa: SIM115 (closed with the process)
        spawned = time.perf_counter()
        self.proc = subprocess.Popen(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.cwd,
            start_new_session=self.own_session,
        )
        log.close()
        if not wait_ready:
            return self
        try:
            with httpx.Client(timeout=HTTP_TIMEOUT, headers=self._auth({})["headers"]) as client:
                wait_for(
                    lambda: self._ready(client),
                    self.ready_timeout,
                    every=self.ready_every,
                    what=f"{self.url}{self.ready_path} to answer 200",
                )
        except (TimeoutError, _Exited) as exc:
            self.stop()
            raise RuntimeError(f"service did not start ({exc}):\n{self.log_tail()}") from None
        self.ready_after = time.perf_counter() - spawned
        return self

    def _ready(self, client: httpx.Client) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise _Exited(f"the process exited with code {code}")
        return client.get(self.url + self.ready_path).status_code == 200

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._signal(sig)
            try:
                self.proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def _signal(self, sig: int) -> None:
        assert self.proc is not None
        if self.own_session:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)

    def __enter__(self) -> Service:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        if self.reap_workers:
            self.kill_workers()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    # -- HTTP ---------------------------------------------------------------------------------

    def _auth(self, kw: dict[str, Any]) -> dict[str, Any]:
        headers = dict(kw.pop("headers", None) or {})
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return {**kw, "headers": headers}

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=HTTP_TIMEOUT, **self._auth(kw))

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.post(self.url + path, timeout=HTTP_TIMEOUT, **self._auth(kw))

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.delete(self.url + path, timeout=HTTP_TIMEOUT, **self._auth(kw))

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.put(self.url + path, timeout=HTTP_TIMEOUT, **self._auth(kw))

    def patch(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.patch(self.url + path, timeout=HTTP_TIMEOUT, **self._auth(kw))

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
        kill_workers_under(self.data_dir)

    def job_record(self, job_name: str) -> dict[str, Any]:
        data: dict[str, Any] = orjson.loads(
            (self.data_dir / "jobs" / f"{job_name}.json").read_bytes()
        )
        return data


def kill_workers_under(root: Path) -> None:
    """Kill every local worker whose job record lives below `root` (a service's data dir, or a
    test's tmp_path), with its process group."""
    for record in root.glob("**/jobs/*.json"):
        with contextlib.suppress(OSError, ValueError):
            pid = orjson.loads(record.read_bytes()).get("pid")
            # the pid of a worker that ended long ago may be another process's now: only the
            # process started for this job has its name in its environment (our SDK's workers
            # and the platform-like fleet workers alike)
            if isinstance(pid, int) and pid > 1 and _runs_job(pid, record.stem):
                os.killpg(pid, signal.SIGKILL)


def _runs_job(pid: int, job_name: str) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            environ = fh.read().split(b"\0")
    except OSError:
        return False
    return f"QM_JOB_NAME={job_name}".encode() in environ


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except (FileNotFoundError, ProcessLookupError):
        return False
