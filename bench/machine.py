"""The machine a run measures on, and what its processes use of it (/proc)."""

from __future__ import annotations

import contextlib
import os
import platform
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path

from bench.config import REPO


def shell(cmd: str) -> str:
    return subprocess.run(
        shlex.split(cmd), capture_output=True, text=True, check=False, cwd=REPO
    ).stdout


def machine() -> dict[str, str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    head = shell("git rev-parse --short HEAD").strip()
    dirty = shell("git status --porcelain --untracked-files=no -- src").strip()
    return {
        "cpus (nproc)": str(os.cpu_count()),
        "cpu model": model,
        "ram": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load average at start": load,
        "code under test": f"{head}{' + uncommitted src/ changes' if dirty else ''}",
    }


def rss_mb(pid: int) -> float:
    """Resident set of a process and all its descendants, MiB."""
    total = 0
    for p in [pid, *_descendants(pid)]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        for child in map(int, children):
            out += [child, *_descendants(child)]
    return out


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time so far of these processes (not their children), seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / tick
