"""Helpers for the CLI tests: `queue-manager serve` as a subprocess, and the CLI itself."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.waiting import WaitTimeout, wait_until

BIN = Path(sys.executable).parent
_SCRIPT = BIN / "queue-manager"
# The console script when installed (pip install -e .), else the module itself.
CLI: list[str] = (
    [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "queue_manager.cli.main"]
)

# Variables that would make the service leave embedded mode or the CLI talk elsewhere.
_FOREIGN = (
    "QM_API_URL",
    "QUEUE_MANAGER_TOKEN",
    "KUBECONFIG",
    "KUBERNETES_SERVICE_HOST",
    "KAFKA_BOOTSTRAP_SERVERS",
    "ARANGO_URL",
    "STORE_BACKEND",
    "BUS_BACKEND",
    "LAUNCHER_BACKEND",
    "HOST",
    "PORT",
    "COLUMNS",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


@dataclass
class Server:
    url: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(FileNotFoundError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def terminate(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill_workers(self) -> None:
        """Local workers outlive the service on purpose (it adopts them): clean them up."""
        for record in (self.data_dir / "jobs").glob("*.json"):
            with contextlib.suppress(ValueError, OSError):
                pid = json.loads(record.read_text()).get("pid")
                if pid:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(int(pid), signal.SIGKILL)


def start_server(root: Path, *serve_args: str, port: int | None = None, **env: str) -> Server:
    """`queue-manager serve` in embedded mode on a free port; returns once it is ready.

    `env` overrides the defaults below; `port` is where to expect it (PORT unless overridden).
    """
    data_dir = root / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log_path = root / "service.log"
    variables = {
        "DATA_DIR": str(data_dir),
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "LOG_FORMAT": "json",
        "RECONCILE_SECONDS": "1",
        "STOP_GRACE_SECONDS": "2",
        "QM_WORKER_DURATION": "2",
        "QM_WORKER_TICK": "0.25",
        **env,
    }
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [*CLI, "serve", *serve_args],
            cwd=root,  # no stray .env
            env=clean_env(**variables),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", data_dir, proc, log_path)

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited with {proc.returncode}:\n{server.log_tail()}")
        return httpx.get(f"{server.url}/health/ready", timeout=2).status_code == 200

    try:
        wait_until(
            ready,
            30,
            what=f"{server.url}/health/ready to answer 200",
            every=0.2,
            ignore=(httpx.HTTPError,),
            detail=lambda: f"the log ends:\n{server.log_tail()}",
        )
    except WaitTimeout:
        server.terminate()
        raise
    return server


def run_cli(
    *args: str,
    api_url: str | None = None,
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    extra = dict(env or {})
    if api_url is not None:
        extra["QM_API_URL"] = api_url
    return subprocess.run(
        [*CLI, *args],
        env=clean_env(**extra),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
