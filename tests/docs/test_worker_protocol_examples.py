"""The examples of docs/worker-protocol.md are what the service reads and sends."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from queue_manager.domain.telemetry import Reported, Source, parse
from queue_manager.ports import Command
from tests.docs.markdown import ROOT, Block, blocks
from tests.support.service import Service, wait_for

PROTOCOL = ROOT / "docs" / "worker-protocol.md"


def _block(tag: str) -> Block:
    (found,) = [b for b in blocks(PROTOCOL) if b.tag == tag]
    return found


def test_the_documented_reports_are_read_in_both_shapes() -> None:
    event = parse(_block("queue-events").text.encode(), Source.EVENTS)
    assert (event.status, event.records_written) == (Reported.LOADING, 378)
    assert event.producer == "loader-producer-6611ba21-398c-4e76-ba9d-46d170f14b89-0"
    control = parse(_block("queue-control").text.encode(), Source.CONTROL)
    assert (control.status, control.records_written) == (Reported.FINISHED, 1200)


def test_the_documented_command_is_the_shape_the_service_sends() -> None:
    documented = json.loads(_block("command").text)
    sent = Command(
        queue_id=documented["queue_id"],
        command="stop",
        command_id=documented["command_id"],
        sent_at=documented["sent_at"],
    ).as_message()
    assert sent == documented


def test_the_sdk_example_runs_as_a_job_and_finishes_its_step(tmp_path: Path) -> None:
    program = tmp_path / "worker.py"
    program.write_text(_block("worker").text)
    service = Service(
        tmp_path / "svc", env={"LOCAL_WORKER_COMMAND": f"{sys.executable} {program}"}
    ).start()
    try:
        queue_id = service.start_queue(
            {"symbol": "BTCUSDT", "type": "api", "time_range": "2024-01-01:2024-01-01"}
        )
        done = wait_for(
            lambda: (q := service.queue(queue_id))["status"] in ("finished", "error") and q, 30
        )
        assert done["status"] == "finished", done
        assert done["records_written"] == 1000
    finally:
        service.stop()
        service.kill_workers()


def test_the_documented_error_report_carries_its_retry_hints() -> None:
    event = parse(_block("queue-events-error").text.encode(), Source.EVENTS)
    assert (event.status, event.finished) == (Reported.ERROR, True)
    assert (event.http_status, event.retry_after, event.error_class) == (429, 7.0, None)
