"""Starting the test suite's servers (Kafka, etcd, kube-apiserver) so they never outlive it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

_spawner: ThreadPoolExecutor | None = None
_spawner_lock = threading.Lock()


def spawn_tied(cmd: list[str], *, cwd: Path, output: IO[bytes]) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own process group, tied to this Python process.

    ``setpriv --pdeathsig KILL`` makes the kernel kill it if we die without cleaning up
    (SIGKILL, OOM, a CI time-out); callers' ``atexit`` hooks cover the ordinary exits. The
    parent-death signal fires when the *thread* that forked exits, so every process is forked
    from one long-lived thread rather than from whichever thread asks.
    """
    global _spawner
    setpriv = shutil.which("setpriv")
    if setpriv is not None:
        cmd = [setpriv, "--pdeathsig", "KILL", *cmd]
    with _spawner_lock:
        if _spawner is None:
            _spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-server-spawner")
        spawner = _spawner
    return spawner.submit(
        subprocess.Popen,
        cmd,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    ).result()


def signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 right now (all held at once, so they are distinct)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def wait_for_interrupt() -> None:
    """Block until Ctrl-C or SIGTERM (for the servers' manual `run` commands)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    signal.sigwait({signal.SIGINT, signal.SIGTERM})
