"""Embedded launcher: each job is a local worker subprocess.

It mimics a Kubernetes Job closely enough that the services cannot tell the difference: names
are idempotent, a failed process is restarted up to `max_retries` times (backoffLimit), and the
job records live on disk, so a restarted service adopts the workers still running and learns
how the others ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
import structlog

from queue_manager.domain.errors import DependencyUnavailable
from queue_manager.ports import JobPhase, JobSpec, JobStatus

log = structlog.get_logger(__name__)

FINISHED_TTL_SECONDS = 3600.0


@dataclass
class _Record:
    name: str
    queue_id: str
    step_index: int
    target: str
    env: dict[str, str]
    max_retries: int
    pid: int = 0
    attempts: int = 0
    phase: JobPhase = JobPhase.ACTIVE
    message: str | None = None
    ended_at: float | None = None
    deleting: bool = field(default=False, metadata={"transient": True})

    def status(self) -> JobStatus:
        return JobStatus(
            name=self.name,
            queue_id=self.queue_id,
            step_index=self.step_index,
            phase=self.phase,
            attempts=self.attempts,
            message=self.message,
        )


def _alive(pid: int, name: str) -> bool:
    """True if `pid` is still the worker of job `name` (pids get reused)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            if fh.read().rsplit(b")", 1)[-1].split()[0] == b"Z":
                return False
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return f"QM_JOB_NAME={name}".encode() in fh.read().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
        return False


def _start_ticks(pid: int) -> int | None:
    """When the process started (clock ticks since boot), None if it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[-1].split()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # After the command name: state is field 3 of stat, starttime field 22.
    if not fields or fields[0] == b"Z":
        return None
    return int(fields[19])


async def _gone(pid: int, name: str, within: float | None, every: float) -> bool:
    """Wait until the worker is gone; False if still alive after `within` seconds."""
    deadline = None if within is None else time.monotonic() + within
    # Polling /proc is the only way to wait for a process that is not our child.
    while _alive(pid, name):
        if deadline is not None and time.monotonic() >= deadline:
            return False
        await asyncio.sleep(every)
    return True


class LocalLauncher:
    name = "local"

    def __init__(
        self,
        jobs_dir: Path,
        *,
        worker_env: Callable[[str], dict[str, str]],
        extra_args: Sequence[str] = (),
        command: Sequence[str] | None = None,
        kill_timeout: float = 5.0,
        poll_seconds: float = 1.0,
    ) -> None:
        self._dir = jobs_dir
        self._worker_env = worker_env
        self._extra_args = list(extra_args)
        self._command = list(command or [sys.executable, "-m", "queue_manager.worker.reference"])
        self._kill_timeout = kill_timeout
        self._poll = poll_seconds
        self._records: dict[str, _Record] = {}
        self._events: asyncio.Queue[JobStatus] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self._adopted: dict[str, tuple[_Record, int | None]] = {}

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DependencyUnavailable("launcher", f"cannot use {self._dir}: {exc}") from exc
        self._spawn_task(self._follow_adopted())
        for path in sorted(self._dir.glob("*.json")):
            record = self._read(path)
            if record is None:
                continue
            self._records[record.name] = record
            if record.phase is JobPhase.ACTIVE:
                if _alive(record.pid, record.name):
                    log.info(
                        "adopted running worker",
                        job=record.name,
                        pid=record.pid,
                        queue_id=record.queue_id,
                        step=record.step_index,
                    )
                    self._adopted[record.name] = (record, _start_ticks(record.pid))
                else:
                    self._ended_without_parent(record)

    async def stop(self) -> None:
        # Workers outlive the service on purpose: a restarted service adopts them.
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def ping(self) -> None:
        if not os.access(self._dir, os.W_OK):
            raise DependencyUnavailable("launcher", f"{self._dir} is not writable")

    # -- port -----------------------------------------------------------------------------------

    async def launch(self, spec: JobSpec) -> None:
        async with self._lock:
            existing = self._records.get(spec.name)
            if existing is not None:
                return  # the job exists (running or ended): same as a 409 from Kubernetes
            record = _Record(
                name=spec.name,
                queue_id=spec.queue_id,
                step_index=spec.step_index,
                target=spec.target,
                env=dict(spec.env),
                max_retries=spec.max_retries,
            )
            try:
                await self._start_process(record)
            except OSError as exc:
                # No job is left behind, so the reconciler's next launch tries again.
                raise DependencyUnavailable(
                    "launcher", f"cannot start job {spec.name}: {exc}"
                ) from exc
            self._records[spec.name] = record

    async def delete(self, name: str) -> None:
        record = self._records.get(name) or self._read_named(name)
        if record is None:
            return
        record.deleting = True
        if record.phase is JobPhase.ACTIVE and record.pid and _alive(record.pid, name):
            self._signal(record, signal.SIGTERM)
            if not await _gone(record.pid, name, self._kill_timeout, 0.05):
                log.warning(
                    "worker ignored SIGTERM, killing",
                    job=name,
                    pid=record.pid,
                    queue_id=record.queue_id,
                    step=record.step_index,
                )
                self._signal(record, signal.SIGKILL)
                await _gone(record.pid, name, None, 0.05)
        self._records.pop(name, None)
        for suffix in (".json", ".exit"):
            try:
                (self._dir / f"{name}{suffix}").unlink(missing_ok=True)
            except OSError as exc:
                raise DependencyUnavailable("launcher", f"cannot delete job {name}: {exc}") from exc

    async def list_jobs(self) -> list[JobStatus]:
        now = time.time()
        for record in list(self._records.values()):
            expired = record.ended_at is not None and now - record.ended_at > FINISHED_TTL_SECONDS
            if expired:
                await self.delete(record.name)
        jobs = [r.status() for r in self._records.values() if not r.deleting]
        try:
            return jobs + self._jobs_of_other_replicas()
        except OSError as exc:
            raise DependencyUnavailable("launcher", f"cannot list {self._dir}: {exc}") from exc

    def _jobs_of_other_replicas(self) -> list[JobStatus]:
        """Replicas sharing the jobs directory see each other's jobs, as on Kubernetes."""
        found = []
        for path in self._dir.glob("*.json"):
            if path.stem in self._records:
                continue
            record = self._read(path)
            if record is None:
                continue
            if record.phase is JobPhase.ACTIVE and not _alive(record.pid, record.name):
                outcome = self._exit_outcome(record.name)
                record.phase = (
                    JobPhase.SUCCEEDED
                    if outcome in ("finished", "interrupted")
                    else (JobPhase.FAILED)
                )
                record.message = None if outcome else "worker process vanished"
            found.append(record.status())
        return found

    async def watch(self) -> AsyncIterator[JobStatus]:
        while True:
            yield await self._events.get()

    # -- internals ----------------------------------------------------------------------------

    def pid_of(self, name: str) -> int | None:
        record = self._records.get(name)
        return record.pid if record else None

    async def _start_process(self, record: _Record) -> None:
        record.attempts += 1
        exit_file = self._dir / f"{record.name}.exit"
        with contextlib.suppress(FileNotFoundError):
            exit_file.unlink()
        env = {
            **os.environ,
            **record.env,
            **self._worker_env(record.queue_id),
            "QM_JOB_NAME": record.name,
            "QM_EXIT_FILE": str(exit_file),
        }
        argv = [*self._command, record.target, *self._extra_args]
        with open(self._dir / f"{record.name}.log", "ab") as out:  # noqa: ASYNC230 (local, tiny)
            proc = await asyncio.create_subprocess_exec(
                *argv,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                # Its own session: signals to the service's group do not reach it, and a
                # restarted service can still find it.
                start_new_session=True,
            )
        record.pid = proc.pid
        record.phase = JobPhase.ACTIVE
        try:
            self._write(record)
        except OSError:
            # Unrecorded, a worker could be neither adopted nor stopped after a restart.
            self._signal(record, signal.SIGKILL)
            raise
        log.info(
            "worker started",
            job=record.name,
            pid=proc.pid,
            attempt=record.attempts,
            queue_id=record.queue_id,
            step=record.step_index,
        )
        self._spawn_task(self._reap(record, proc))

    async def _reap(self, record: _Record, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        if code == 0:
            await self._ended(record, JobPhase.SUCCEEDED, None)
        elif code < 0:
            await self._failed(record, f"worker killed by signal {-code}")
        else:
            await self._failed(record, f"worker exited with code {code}")

    async def _follow_adopted(self) -> None:
        """Watch the workers started by an earlier run of the service (not our children).

        One loop for all of them; after adoption a process is only checked by its start time,
        which is cheap and tells a reused pid apart.
        """
        while True:
            await asyncio.sleep(self._poll)
            for name, (record, ticks) in list(self._adopted.items()):
                if ticks is None or _start_ticks(record.pid) != ticks:
                    del self._adopted[name]
                    if not record.deleting:
                        self._ended_without_parent(record)

    def _ended_without_parent(self, record: _Record) -> None:
        outcome = self._exit_outcome(record.name)
        if outcome is None:
            self._spawn_task(self._failed(record, "worker process vanished"))
        elif outcome == "error":
            self._spawn_task(self._failed(record, "worker exited with an error"))
        else:
            self._spawn_task(self._ended(record, JobPhase.SUCCEEDED, None))

    async def _failed(self, record: _Record, message: str) -> None:
        if record.deleting:
            return
        if record.attempts <= record.max_retries:
            log.warning(
                "worker failed, retrying",
                job=record.name,
                reason=message,
                attempt=record.attempts,
                queue_id=record.queue_id,
                step=record.step_index,
            )
            try:
                async with self._lock:
                    await self._start_process(record)
            except OSError as exc:
                await self._ended(record, JobPhase.FAILED, f"{message}; restart failed: {exc}")
                return
            await self._events.put(record.status())
            return
        await self._ended(record, JobPhase.FAILED, message)

    async def _ended(self, record: _Record, phase: JobPhase, message: str | None) -> None:
        if record.deleting:
            return
        record.phase = phase
        record.message = message
        record.ended_at = time.time()
        try:
            self._write(record)
        except OSError:
            # The outcome is still reported; only a restarted service will not know it.
            log.exception("job record not written", job=record.name)
        log.info(
            "worker ended",
            job=record.name,
            phase=phase.value,
            reason=message,
            queue_id=record.queue_id,
            step=record.step_index,
        )
        await self._events.put(record.status())

    def _exit_outcome(self, name: str) -> str | None:
        try:
            data: Any = orjson.loads((self._dir / f"{name}.exit").read_bytes())
        except (OSError, orjson.JSONDecodeError):  # none, unreadable or half written: no word
            return None
        return str(data.get("outcome")) if isinstance(data, dict) else None

    def _signal(self, record: _Record, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(record.pid, sig)

    def _spawn_task(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _write(self, record: _Record) -> None:
        data = {k: v for k, v in asdict(record).items() if k != "deleting"}
        path = self._dir / f"{record.name}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(data))
        tmp.replace(path)

    def _read_named(self, name: str) -> _Record | None:
        path = self._dir / f"{name}.json"
        return self._read(path) if path.exists() else None

    def _read(self, path: Path) -> _Record | None:
        try:
            data = orjson.loads(path.read_bytes())
            data["phase"] = JobPhase(data["phase"])
            return _Record(**data)
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("unreadable job record skipped", path=str(path))
            return None
