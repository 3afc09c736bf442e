"""The jobs directory: `<name>.json` is a job's record (written atomically), `<name>.exit`
the worker's last word (its outcome, written by the worker SDK), `<name>.log` its output.
Replicas sharing the directory see each other's jobs, as on Kubernetes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
import structlog

from queue_manager.job_contract import ExitFile
from queue_manager.ports import JobPhase, JobStatus

log = structlog.get_logger(__name__)


@dataclass
class JobRecord:
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
    #: the credentials the job gets (`JobSpec.secret_env`), by name only: their values are
    #: looked up each time the worker starts and never written
    secret_names: list[str] = field(default_factory=list)
    #: once it ended: what its worker's exit file said, how it ended and the records it wrote
    outcome: str | None = None
    records_written: int | None = None
    #: the service process that started the worker (`procfs.identity`): while it runs, it and
    #: no other replica tells how the worker ended
    owner: str = ""
    #: the step's `timeout`: seconds from the first start until the worker is killed, and
    #: that moment (epoch seconds) once started
    timeout: float | None = None
    deadline: float | None = None
    #: why it failed, as `JobStatus.error_class` (`timeout`, `infrastructure`)
    error_class: str | None = None
    #: being deleted by this process; never written
    deleting: bool = False

    def status(self) -> JobStatus:
        return JobStatus(
            name=self.name,
            queue_id=self.queue_id,
            step_index=self.step_index,
            phase=self.phase,
            attempts=self.attempts,
            message=self.message,
            outcome=self.outcome,
            records_written=self.records_written,
            error_class=self.error_class,
        )


def ended_without_us(outcome: str | None) -> tuple[JobPhase, str | None]:
    """How a job ended whose worker no process of ours saw exit, from its exit file."""
    if outcome in ("finished", "interrupted"):
        return JobPhase.SUCCEEDED, None
    if outcome == "error":
        return JobPhase.FAILED, "worker exited with an error"
    if outcome is None:
        return JobPhase.FAILED, "worker process vanished"
    return JobPhase.FAILED, f"worker left an unknown outcome {outcome!r}"


class JobsDir:
    def __init__(self, path: Path) -> None:
        self.path = path

    def create(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)

    def exit_file(self, name: str) -> Path:
        return self.path / f"{name}.exit"

    def log_file(self, name: str) -> Path:
        return self.path / f"{name}.log"

    def names(self) -> Iterator[str]:
        return (path.stem for path in sorted(self.path.glob("*.json")))

    def write(self, record: JobRecord) -> None:
        data = {k: v for k, v in asdict(record).items() if k != "deleting"}
        path = self.path / f"{record.name}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(data))
        tmp.replace(path)

    def read(self, name: str) -> JobRecord | None:
        """The record of job `name`; None if there is none or it cannot be read."""
        path = self.path / f"{name}.json"
        try:
            data = orjson.loads(path.read_bytes())
            data["phase"] = JobPhase(data["phase"])
            return JobRecord(**data)
        except FileNotFoundError:
            return None
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("unreadable job record skipped", path=str(path))
            return None

    def exit_outcome(self, name: str) -> str | None:
        return self.exit_report(name)[0]

    def exit_report(self, name: str) -> tuple[str | None, int | None]:
        """What the worker's exit file says: its outcome and the records it wrote in all, each
        None when it does not say (no file, unreadable, half written, not a count)."""
        try:
            data: Any = orjson.loads(self.exit_file(name).read_bytes())
        except (OSError, orjson.JSONDecodeError):  # none, unreadable or half written: no word
            return None, None
        if not isinstance(data, dict):
            return None, None
        outcome = data.get(ExitFile.OUTCOME)
        records = data.get(ExitFile.RECORDS_WRITTEN)
        valid = isinstance(records, int) and not isinstance(records, bool) and records >= 0
        return (str(outcome) if outcome is not None else None), (records if valid else None)

    def forget_exit(self, name: str) -> None:
        self.exit_file(name).unlink(missing_ok=True)

    def remove(self, name: str) -> None:
        """The record and the exit file; the log stays for whoever wants to read it."""
        for suffix in (".json", ".exit"):
            (self.path / f"{name}{suffix}").unlink(missing_ok=True)
