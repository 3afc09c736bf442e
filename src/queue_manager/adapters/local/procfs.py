"""What /proc says about a worker process, which after a restart of the service is no longer
our child: whether a pid is still the worker of a job, since pids get reused."""

from __future__ import annotations

import asyncio
import time

from queue_manager.job_contract import Env

#: the environment entry that marks a process as the worker of one job
JOB_NAME_ENV = Env.QM_JOB_NAME


def _stat(pid: int) -> list[bytes] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), None if the
    process is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            # The command name is in parentheses and may itself hold spaces and ')'.
            fields = fh.read().rsplit(b")", 1)[-1].split()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    if not fields or fields[0] == b"Z":
        return None
    return fields


def alive(pid: int, name: str) -> bool:
    """True if `pid` is still the worker of job `name` (pids get reused)."""
    if pid <= 0 or _stat(pid) is None:
        return False
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return f"{JOB_NAME_ENV}={name}".encode() in fh.read().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False


def identity(pid: int) -> str | None:
    """`pid:start time`, which names one process for the life of the machine (a pid alone is
    reused); None if it is gone."""
    fields = _stat(pid)
    # /proc/<pid>/stat field 22 is the start time; `fields` begins at field 3.
    return None if fields is None or len(fields) < 20 else f"{pid}:{fields[19].decode()}"


def running(ident: str) -> bool:
    """Whether the process `identity` named is still running."""
    pid, _, _ = ident.partition(":")
    return pid.isdigit() and identity(int(pid)) == ident


async def wait_gone(pid: int, name: str, within: float | None, every: float) -> bool:
    """Wait until the worker is gone; False if still alive after `within` seconds."""
    deadline = None if within is None else time.monotonic() + within
    while alive(pid, name):
        if deadline is not None and time.monotonic() >= deadline:
            return False
        await asyncio.sleep(every)
    return True
