"""What a worker writes (docs/worker-protocol.md): its telemetry messages and, as it ends, the
exit file. Field names come from the job contract."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from queue_manager.job_contract import ExitFile, Reported, Telemetry
from queue_manager.worker.env import WorkerEnv


def telemetry(
    env: WorkerEnv,
    event: str,
    *,
    records_written: int,
    last_loaded: datetime | None,
    message: str | None = None,
    error_message: str | None = None,
) -> dict[str, Any]:
    """One telemetry message in the workers' queue-events shape."""
    t = Telemetry
    return {
        t.EVENT: str(event),
        t.QUEUE_ID: env.queue_id,
        t.PRODUCER: env.telemetry_producer_id,
        t.RECORDS_WRITTEN: records_written,
        t.LAST_LOADED_TIMESTAMP: last_loaded.isoformat() if last_loaded is not None else None,
        # An SDK `error` ends the worker: `finished: true`, the shape of a step-ending error
        # (`false` would make it a recoverable one, docs/worker-protocol.md).
        t.FINISHED: event in (Reported.FINISHED, Reported.ERROR),
        t.MESSAGE: message,
        t.ERROR_MESSAGE: error_message,
        t.SENT_AT: datetime.now(UTC).isoformat(),
        t.SYMBOL: env.symbol,
        t.TYPE: env.step_type,
    }


def error_hints(
    *,
    error_class: str | None = None,
    http_status: int | None = None,
    retry_after: float | None = None,
) -> dict[str, Any]:
    """The optional fields of an `error` report (docs/worker-protocol.md), those given."""
    t = Telemetry
    hints = {t.ERROR_CLASS: error_class, t.HTTP_STATUS: http_status, t.RETRY_AFTER: retry_after}
    return {key: value for key, value in hints.items() if value is not None}


def write_exit_file(
    path: Path,
    env: WorkerEnv,
    *,
    outcome: str,
    records_written: int,
    error_message: str | None,
) -> None:
    """Raises OSError when the file cannot be written."""
    record = {
        ExitFile.OUTCOME: outcome,
        ExitFile.QUEUE_ID: env.queue_id,
        ExitFile.PRODUCER: env.telemetry_producer_id,
        ExitFile.RECORDS_WRITTEN: records_written,
        ExitFile.ERROR_MESSAGE: error_message,
    }
    # A launcher reading while we write must see the old file or the whole new one.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record) + "\n", encoding="utf-8")
    os.replace(tmp, path)
