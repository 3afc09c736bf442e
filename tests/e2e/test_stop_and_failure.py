"""docs/api.md, docs/worker-protocol.md: stop, fail-fast on a killed worker, and a service restart
losing nothing."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.history import assert_history_matches_state, history_of
from tests.support.service import Service, pid_alive, wait_for


def _running(service: Service, queue_id: str, count: int) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        queue = service.queue(queue_id)
        running = [s for s in queue["steps"] if s["status"] in ("started", "loading")]
        return queue if len(running) >= count else None

    return wait_for(check, 30)


def test_stop_ends_every_step_and_every_worker_process(
    service: Service, realtime: dict[str, Any]
) -> None:
    queue_id = service.start_queue(realtime)
    queue = _running(service, queue_id, 7)
    pids = [service.job_record(s["job_name"])["pid"] for s in queue["steps"]]
    assert all(pid_alive(pid) for pid in pids)
    began = time.monotonic()
    answer = service.post("/queues/stop", json={"queue_id": queue_id})
    assert answer.status_code == 200 and answer.json()["message"] == "Queue stopped"
    queue = service.wait_status(queue_id, {"stopped"}, 3 + 5)
    assert time.monotonic() - began <= 3 + 5
    assert [s["status"] for s in queue["steps"]] == ["stopped"] * 7
    wait_for(lambda: not any(pid_alive(pid) for pid in pids), 5)
    again = service.post(f"/queues/stop?queue_id={queue_id}")
    assert again.status_code == 200 and again.json()["data"]["status"] == "stopped"


def test_force_stop_kills_at_once(service: Service, realtime: dict[str, Any]) -> None:
    queue_id = service.start_queue(realtime)
    _running(service, queue_id, 7)
    answer = service.post(f"/queues/stop?queue_id={queue_id}&force=true")
    assert answer.status_code == 200
    queue = service.wait_status(queue_id, {"stopped"}, 3)
    assert {s["status"] for s in queue["steps"]} == {"stopped"}


def test_stopping_a_finished_queue_is_a_conflict(service: Service, single: dict[str, Any]) -> None:
    queue_id = service.start_queue(single)
    service.wait_status(queue_id, {"finished"}, 30)
    answer = service.post(f"/queues/stop?queue_id={queue_id}")
    assert answer.status_code == 409
    assert answer.json()["status"] == "error"


def test_a_killed_worker_fails_its_step_and_the_queue_fast(
    service: Service, realtime: dict[str, Any]
) -> None:
    queue_id = service.start_queue(realtime)
    queue = _running(service, queue_id, 7)
    victim = queue["steps"][4]  # graph-builder
    pids = [service.job_record(s["job_name"])["pid"] for s in queue["steps"]]
    os.kill(service.job_record(victim["job_name"])["pid"], signal.SIGKILL)
    queue = service.wait_status(queue_id, {"error"}, 15)
    assert "step 4 (graph-builder)" in queue["error_message"]
    statuses = [s["status"] for s in queue["steps"]]
    assert statuses[4] == "error"
    assert all(s == "stopped" for i, s in enumerate(statuses) if i != 4)
    wait_for(lambda: not any(pid_alive(pid) for pid in pids), 10)


#: what a worker's log says when the service does not answer (queue_manager.worker.sdk)
OUTAGE_NOTICE = "progress update not delivered, retrying"


def test_service_killed_mid_run_resumes_without_losing_anything(
    service: Service, historical: dict[str, Any], realtime: dict[str, Any]
) -> None:
    batch_id = service.start_queue(historical)
    stream_id = service.start_queue(realtime)
    _running(service, batch_id, 4)
    stream = _running(service, stream_id, 7)
    service.stop(signal.SIGKILL)
    # The outage as the workers see it: every streaming worker fails to deliver a report.
    logs = [service.data_dir / "jobs" / f"{s['job_name']}.log" for s in stream["steps"]]
    wait_for(
        lambda: all(OUTAGE_NOTICE in log.read_text(errors="replace") for log in logs),
        15,
        what="every streaming worker to log that a report was not delivered",
    )
    service.start()
    # The pipeline whose loaders were running when the service died still completes: its
    # pending graph-builder and gnn-trainer launch after the restart.
    queue = service.wait_status(batch_id, {"finished", "error"}, 60)
    assert queue["status"] == "finished", queue
    stream = service.queue(stream_id)
    assert stream["status"] == "loading"
    for step in stream["steps"]:
        assert step["status"] in ("started", "loading")
        assert pid_alive(service.job_record(step["job_name"])["pid"])
    # The history was written with each change: nothing missing or doubled across the crash.
    for queue_id in (batch_id, stream_id):
        assert_history_matches_state(service.queue(queue_id), history_of(service, queue_id))
    service.post(f"/queues/stop?queue_id={stream_id}&force=true")
    service.wait_status(stream_id, {"stopped"}, 10)


STUBBORN = (
    f'{sys.executable} -c "import signal, time; '
    'signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(3600)"'
)


def test_a_worker_that_ignores_stop_is_killed_after_the_grace_period(
    tmp_path: Path, single: dict[str, Any]
) -> None:
    svc = Service(
        tmp_path / "svc",
        env={
            "STOP_GRACE_SECONDS": "2",
            "LOCAL_KILL_TIMEOUT_SECONDS": "1",
            "LOCAL_WORKER_COMMAND": STUBBORN,
        },
    ).start()
    try:
        queue_id = svc.start_queue(single)
        job = svc.queue(queue_id)["steps"][0]["job_name"]
        pid = wait_for(lambda: svc.job_record(job)["pid"], 10)
        began = time.monotonic()
        assert svc.post(f"/queues/stop?queue_id={queue_id}").status_code == 200
        queue = svc.wait_status(queue_id, {"stopped"}, 2 + 5)
        assert queue["steps"][0]["status"] == "stopped"
        assert time.monotonic() - began <= 2 + 5
        wait_for(lambda: not pid_alive(pid), 5)
    finally:
        svc.stop()
        svc.kill_workers()
