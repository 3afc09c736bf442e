"""The WebSocket readers of P2 and P6, driven from the benchmark: bench/ws_clients.py processes,
one phase at a time."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from tests.support.waiting import wait_until

from bench.config import REPO


@dataclass
class WsReaders:
    """`clients` readers split over `procs` processes of bench/ws_clients.py (the `silent` ones
    in the first); each phase's results are merged: latency histograms summed, lists joined."""

    url: str
    out: Path
    clients: int = 1
    silent: int = 0
    t_base: float = 0.0
    dump: bool = False
    drain: float = 2.0
    procs: int = 1
    started: list[subprocess.Popen[str]] = field(default_factory=list)
    phase: int = 0

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.started]

    def start(self, timeout: float = 180) -> WsReaders:
        for k in range(self.procs):
            share = self.clients * (k + 1) // self.procs - self.clients * k // self.procs
            cmd = [sys.executable, "-m", "bench.ws_clients", self.url, f"{self.out}.p{k}",
                   "--clients", str(share), "--silent", str(self.silent if k == 0 else 0),
                   "--t-base", str(self.t_base), "--drain", str(self.drain)]  # fmt: skip
            if self.dump:
                cmd.append("--dump")
            self.started.append(subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            ))  # fmt: skip
        for proc in self.started:
            wait_until(lambda proc=proc: said(proc, "READY"), timeout, every=0,
                       what="the WebSocket readers to connect (READY)")  # fmt: skip
        return self

    def go(self, seconds: float) -> None:
        """Start a phase: the readers collect for `seconds` plus the drain time."""
        for proc in self.started:
            assert proc.stdin is not None
            proc.stdin.write(f"{seconds}\n")
            proc.stdin.flush()

    def result(self, timeout: float = 300) -> dict[str, Any]:
        """Wait for the phase started by `go` to end and return what the readers saw."""
        merged: dict[str, Any] = {"hist": {}, "closed": [], "errors": 0, "connected": 0,
                                  "dump": [] if self.dump else None}
        for k, proc in enumerate(self.started):
            wait_until(lambda proc=proc: said(proc, "DONE"), timeout, every=0,
                       what="the WebSocket readers to end the phase (DONE)")  # fmt: skip
            data = orjson.loads(Path(f"{self.out}.p{k}.{self.phase}").read_bytes())
            for tenths, n in data["hist"].items():
                merged["hist"][int(tenths)] = merged["hist"].get(int(tenths), 0) + n
            merged["closed"] += data["closed"]
            merged["errors"] += data["errors"]
            merged["connected"] += data["connected"]
            if self.dump:
                merged["dump"] += data["dump"]
        self.phase += 1
        return merged

    def close(self) -> None:
        for proc in self.started:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.write("quit\n")
                    proc.stdin.flush()
        for proc in self.started:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.started = []


def said(proc: subprocess.Popen[str], word: str) -> bool:
    """Whether the next line `proc` writes is `word` (blocks for that line)."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line and proc.poll() is not None:
        raise RuntimeError(f"websocket readers exited (code {proc.returncode}) before {word}")
    return line.strip() == word
