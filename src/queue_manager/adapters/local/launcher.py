"""`LocalLauncher`: the `Launcher` port on local worker processes. Workers outlive the service
on purpose; a restarted service adopts those still running and follows each through a pidfd."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import structlog

from queue_manager.adapters.local import procfs
from queue_manager.adapters.local.logs import read_log
from queue_manager.adapters.local.records import JobRecord, JobsDir, ended_without_us
from queue_manager.domain.errors import DependencyUnavailable
from queue_manager.domain.retry import ErrorClass
from queue_manager.job_contract import Env
from queue_manager.ports import JobPhase, JobSpec, JobStatus

log = structlog.get_logger(__name__)

DEPENDENCY = "launcher"
FINISHED_TTL_SECONDS = 3600.0
_NONE: Mapping[str, Any] = MappingProxyType({})


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
        hidden_env: frozenset[str] = frozenset(),
        secrets: Mapping[str, str] = _NONE,
        target_commands: Mapping[str, Sequence[str]] = _NONE,
    ) -> None:
        self._dir = JobsDir(jobs_dir)
        #: the service's own settings (passwords, secrets) are not the workers' business
        self._hidden_env = hidden_env
        #: env name -> value of the credentials a job gets by reference (`JobSpec.secret_env`):
        #: put in its process environment at start, never in its record
        self._secrets = dict(secrets)
        #: the variables a job gets for reporting over HTTP, given its producer id (its step
        #: run's `TELEMETRY_PRODUCER_ID`): its credential is that run's
        self._worker_env = worker_env
        self._extra_args = list(extra_args)
        self._command = list(command or [sys.executable, "-m", "queue_manager.worker.reference"])
        #: target -> the program its jobs run exactly as given (no target, no extra args)
        self._target_commands = {target: list(argv) for target, argv in target_commands.items()}
        self._kill_timeout = kill_timeout
        self._records: dict[str, JobRecord] = {}
        self._events: asyncio.Queue[JobStatus] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        #: workers an earlier run started (not our children), with the pidfd that tells their end
        self._adopted: dict[str, tuple[JobRecord, int]] = {}
        #: workers this run started, until reaped
        self._children: dict[str, asyncio.subprocess.Process] = {}
        self._me = procfs.identity(os.getpid()) or ""

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            self._dir.create()
            names = list(self._dir.names())
        except OSError as exc:
            raise DependencyUnavailable(DEPENDENCY, f"cannot use {self._dir.path}: {exc}") from exc
        for name in names:
            record = self._dir.read(name)
            if record is None or self._owned_by_another(record):
                continue
            self._records[record.name] = record
            if record.phase is not JobPhase.ACTIVE:
                continue
            if self._adopt(record):
                self._arm_deadline(record)
                log.info(
                    "adopted running worker",
                    job=record.name,
                    pid=record.pid,
                    queue_id=record.queue_id,
                    step=record.step_index,
                )
            else:
                self._ended_without_parent(record)

    async def stop(self) -> None:
        # Workers outlive the service on purpose: a restarted service adopts them.
        for name in list(self._adopted):
            self._unfollow(name)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def ping(self) -> None:
        if not os.access(self._dir.path, os.W_OK):
            raise DependencyUnavailable(DEPENDENCY, f"{self._dir.path} is not writable")

    # -- port -----------------------------------------------------------------------------------

    async def launch(self, spec: JobSpec) -> None:
        async with self._lock:
            if spec.name in self._records:
                return  # the job exists (running or ended): same as a 409 from Kubernetes
            record = JobRecord(
                name=spec.name,
                queue_id=spec.queue_id,
                step_index=spec.step_index,
                target=spec.target,
                env=dict(spec.env),
                max_retries=spec.max_retries,
                secret_names=sorted(spec.secret_env),
                timeout=spec.timeout,
            )
            try:
                await self._start_process(record)
            except OSError as exc:
                # No job is left behind, so the reconciler's next launch tries again.
                raise DependencyUnavailable(
                    DEPENDENCY, f"cannot start job {spec.name}: {exc}"
                ) from exc
            self._records[spec.name] = record

    async def delete(self, name: str) -> None:
        record = self._records.get(name) or self._dir.read(name)
        if record is None:
            return
        record.deleting = True
        child = self._children.get(name)
        if child is not None:
            # Our child: its pid cannot be reused before we reap it, and /proc may not show
            # the worker's environment yet if it was started a moment ago.
            self._signal(record, signal.SIGTERM)
            try:
                await asyncio.wait_for(child.wait(), self._kill_timeout)
            except TimeoutError:
                self._kill(record)
                await child.wait()
        elif record.phase is JobPhase.ACTIVE and procfs.alive(record.pid, name):
            self._signal(record, signal.SIGTERM)
            if not await procfs.wait_gone(record.pid, name, self._kill_timeout, 0.05):
                self._kill(record)
                await procfs.wait_gone(record.pid, name, None, 0.05)
        self._records.pop(name, None)
        try:
            self._dir.remove(name)
        except OSError as exc:
            raise DependencyUnavailable(DEPENDENCY, f"cannot delete job {name}: {exc}") from exc

    def logs(self, name: str, *, tail: int | None, follow: bool) -> AsyncIterator[bytes]:
        def running() -> bool:
            record = self._records.get(name) or self._dir.read(name)
            if record is None or record.phase is not JobPhase.ACTIVE:
                return False
            return name in self._children or procfs.alive(record.pid, name)

        return read_log(self._dir.log_file(name), tail=tail, follow=follow, running=running)

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
            raise DependencyUnavailable(DEPENDENCY, f"cannot list {self._dir.path}: {exc}") from exc

    async def watch(self) -> AsyncIterator[JobStatus]:
        while True:
            yield await self._events.get()

    # -- internals ----------------------------------------------------------------------------

    def _owned_by_another(self, record: JobRecord) -> bool:
        return bool(record.owner) and record.owner != self._me and procfs.running(record.owner)

    def _jobs_of_other_replicas(self) -> list[JobStatus]:
        found = []
        for name in self._dir.names():
            if name in self._records:
                continue
            record = self._dir.read(name)
            if record is None:
                continue
            ended = record.phase is JobPhase.ACTIVE and not procfs.alive(record.pid, record.name)
            # A worker that just exited is still ACTIVE on disk until its replica writes how it
            # ended (its exit code, which only that replica knows): it is that replica's word.
            if ended and not self._owned_by_another(record):
                record.outcome, record.records_written = self._dir.exit_report(name)
                record.phase, record.message = ended_without_us(record.outcome)
            found.append(record.status())
        return found

    async def _start_process(self, record: JobRecord) -> None:
        record.attempts += 1
        self._dir.forget_exit(record.name)
        env = {
            **{k: v for k, v in os.environ.items() if k.upper() not in self._hidden_env},
            **record.env,
            **{name: self._secrets[name] for name in record.secret_names if name in self._secrets},
            **self._worker_env(record.env.get(Env.TELEMETRY_PRODUCER_ID, "")),
            procfs.JOB_NAME_ENV: record.name,
            Env.QM_EXIT_FILE: str(self._dir.exit_file(record.name)),
        }
        argv = self._target_commands.get(record.target) or [
            *self._command,
            record.target,
            *self._extra_args,
        ]
        with open(self._dir.log_file(record.name), "ab") as out:  # noqa: ASYNC230 (local, tiny)
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
        record.owner = self._me
        try:
            self._dir.write(record)
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
        self._children[record.name] = proc
        self._spawn_task(self._reap(record, proc))
        if record.timeout is not None and record.deadline is None:
            # From the first start, as Kubernetes' activeDeadlineSeconds counts (restarts too).
            record.deadline = time.time() + record.timeout
            self._write_quietly(record)
            self._arm_deadline(record)

    def _arm_deadline(self, record: JobRecord) -> None:
        if record.deadline is not None:
            self._spawn_task(self._expire(record, record.deadline))

    async def _expire(self, record: JobRecord, deadline: float) -> None:
        """The step's `timeout` passed: the worker is killed at once (SIGKILL, so it reports
        no `interrupted` that would end the step before the launcher's word does) and the job
        fails with `error_class` timeout, whatever its retries."""
        await asyncio.sleep(max(deadline - time.time(), 0.0))
        if record.deleting or record.phase is not JobPhase.ACTIVE:
            return
        if self._records.get(record.name) is not record:
            return
        assert record.timeout is not None
        record.error_class = ErrorClass.TIMEOUT.value
        record.message = f"timed out: ran longer than its timeout of {record.timeout:g} s"
        log.warning(
            "worker ran past its timeout, killing",
            job=record.name,
            pid=record.pid,
            timeout=record.timeout,
            queue_id=record.queue_id,
            step=record.step_index,
        )
        self._signal(record, signal.SIGKILL)
        if record.name not in self._children and record.name not in self._adopted:
            await self._ended(record, JobPhase.FAILED, record.message)

    def _write_quietly(self, record: JobRecord) -> None:
        try:
            self._dir.write(record)
        except OSError:
            log.exception("job record not written", job=record.name)

    async def _reap(self, record: JobRecord, proc: asyncio.subprocess.Process) -> None:
        try:
            code = await proc.wait()
        finally:
            if self._children.get(record.name) is proc:
                del self._children[record.name]
        if record.error_class == ErrorClass.TIMEOUT:
            await self._ended(record, JobPhase.FAILED, record.message, ErrorClass.TIMEOUT)
        elif code == 0:
            await self._ended(record, JobPhase.SUCCEEDED, None)
        elif code < 0:
            # Not by us (a delete reaps nothing): the OOM killer's SIGKILL, or an operator's.
            await self._failed(record, _killed_by(-code), ErrorClass.INFRASTRUCTURE)
        else:
            await self._failed(record, f"worker exited with code {code}")

    def _adopt(self, record: JobRecord) -> bool:
        """Follow a worker that is not our child, False if it is gone: its pidfd turns readable
        when it exits, so nothing polls (a /proc read per adopted worker per second cost 8 % of
        the telemetry path with a thousand of them)."""
        try:
            fd = os.pidfd_open(record.pid)
        except OSError:  # gone (ESRCH), or no pid was ever recorded (EINVAL)
            return False
        # Checked once the fd pins the process, so a reused pid cannot slip in after the check.
        if not procfs.alive(record.pid, record.name):
            os.close(fd)
            return False
        self._adopted[record.name] = (record, fd)
        asyncio.get_running_loop().add_reader(fd, self._adopted_exited, record.name)
        return True

    def _adopted_exited(self, name: str) -> None:
        record = self._unfollow(name)
        if record is not None and not record.deleting:
            self._ended_without_parent(record)

    def _unfollow(self, name: str) -> JobRecord | None:
        entry = self._adopted.pop(name, None)
        if entry is None:
            return None
        record, fd = entry
        asyncio.get_running_loop().remove_reader(fd)
        os.close(fd)
        return record

    def _ended_without_parent(self, record: JobRecord) -> None:
        phase, message = ended_without_us(self._dir.exit_outcome(record.name))
        if record.error_class == ErrorClass.TIMEOUT:
            self._spawn_task(
                self._ended(record, JobPhase.FAILED, record.message, ErrorClass.TIMEOUT)
            )
        elif phase is JobPhase.FAILED:
            assert message is not None
            self._spawn_task(self._failed(record, message))
        else:
            self._spawn_task(self._ended(record, phase, message))

    async def _failed(
        self, record: JobRecord, message: str, error_class: ErrorClass | None = None
    ) -> None:
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
        await self._ended(record, JobPhase.FAILED, message, error_class)

    async def _ended(
        self,
        record: JobRecord,
        phase: JobPhase,
        message: str | None,
        error_class: ErrorClass | None = None,
    ) -> None:
        if record.deleting:
            return
        record.phase = phase
        record.message = message
        record.error_class = error_class.value if error_class is not None else None
        record.ended_at = time.time()
        # Its worker's last word, in the job's status from now on (and on disk with it).
        record.outcome, record.records_written = self._dir.exit_report(record.name)
        try:
            self._dir.write(record)
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

    def _kill(self, record: JobRecord) -> None:
        log.warning(
            "worker ignored SIGTERM, killing",
            job=record.name,
            pid=record.pid,
            queue_id=record.queue_id,
            step=record.step_index,
        )
        self._signal(record, signal.SIGKILL)

    def _signal(self, record: JobRecord, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(record.pid, sig)

    def _spawn_task(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _killed_by(number: int) -> str:
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = str(number)
    hint = " (out of memory? the OOM killer sends SIGKILL)" if number == signal.SIGKILL else ""
    return f"worker killed by signal {name}{hint}"
