"""Retry from the failed step and resubmit (docs/api.md), with real worker processes."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from queue_manager.api.worker_auth import WorkerTokens
from tests.support.history import assert_history_matches_state, history_of
from tests.support.service import Service, wait_for

TOKEN_SECRET = "retry-test-worker-token-secret"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    svc = Service(
        tmp_path / "svc",
        env={"STOP_GRACE_SECONDS": "2", "WORKER_TOKEN_SECRET": TOKEN_SECRET,
             "LOCAL_WORKER_ARGS": "--duration 2"},
    ).start()  # fmt: skip
    yield svc
    svc.stop()
    svc.kill_workers()


def _late_report(service: Service, queue_id: str, producer: str) -> None:
    """A report of the killed run, with that run's own credential: refused, the run is over."""
    token = WorkerTokens(TOKEN_SECRET.encode()).token(producer)
    answer = service.post(
        "/internal/telemetry",
        json={"event": "error", "queue_id": queue_id, "producer": producer,
              "error_message": "late news from the killed run", "records_written": 1},
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    assert answer.status_code == 403, answer.text
    assert "retry replaces it" in answer.json()["message"]


def test_retry_reruns_only_what_did_not_finish_and_ignores_the_old_run(
    service: Service, historical: dict[str, Any]
) -> None:
    queue_id = service.start_queue(historical)
    building = wait_for(
        lambda: (q := service.queue(queue_id))["steps"][4]["status"] == "loading" and q, 40
    )
    before = {s["index"]: s for s in building["steps"][:4]}
    assert {s["status"] for s in before.values()} == {"finished"}
    loader_records = {i: service.job_record(s["job_name"]) for i, s in before.items()}
    killed = building["steps"][4]
    os.killpg(service.job_record(killed["job_name"])["pid"], signal.SIGKILL)
    failed = service.wait_status(queue_id, {"error"}, 20)
    assert [s["status"] for s in failed["steps"][4:]] == ["error", "skipped"]

    answer = service.post(f"/queues/{queue_id}/retry")
    assert answer.status_code == 200, answer.text
    assert answer.json()["message"] == "Queue retried"
    done = service.wait_status(queue_id, {"finished", "error"}, 40)
    assert done["status"] == "finished", done
    assert done["error_message"] is None and done["retries"] == 1
    for index, step in before.items():  # reused, not relaunched
        now = done["steps"][index]
        assert (now["job_name"], now["attempts"], now["run"]) == (step["job_name"], 1, 0)
        assert service.job_record(now["job_name"])["pid"] == loader_records[index]["pid"]
    rerun = done["steps"][4:]
    assert [s["run"] for s in rerun] == [1, 1]
    assert all(s["job_name"].endswith("-r1") for s in rerun)
    assert rerun[0]["attempts"] == 2

    # A report of the killed run, arriving late, is refused and changes nothing.
    _late_report(service, queue_id, killed["telemetry_id"])
    assert service.queue(queue_id)["status"] == "finished"
    assert service.queue(queue_id)["steps"][4]["status"] == "finished"
    _assert_the_history_tells_the_story(service, queue_id, killed["telemetry_id"])

    again = service.post(f"/queues/{queue_id}/retry")
    assert again.status_code == 409
    assert again.json()["message"] == (
        f"Queue {queue_id} is finished; only an error or stopped queue can be retried"
    )


def _assert_the_history_tells_the_story(service: Service, queue_id: str, killed: str) -> None:
    queue = service.queue(queue_id)
    events = history_of(service, queue_id)
    assert_history_matches_state(queue, events)
    statuses = [(e["from"], e["to"]) for e in events if e["kind"] == "queue.status"]
    assert statuses == [(None, "pending"), ("pending", "loading"), ("loading", "error"),
                        ("error", "loading"), ("loading", "finished")]  # fmt: skip
    builder = [e for e in events if e["kind"] == "step.status" and e["step"] == 4]
    assert [e["to"] for e in builder][:1] + [e["to"] for e in builder][-1:] == [
        "launching", "finished"]  # fmt: skip
    failed = next(e for e in builder if e["to"] == "error")
    assert failed["message"] and failed["actor"] in ("launcher", "reconciler")
    assert next(e for e in builder if e["to"] == "loading")["actor"] == f"telemetry:{killed}"
    retried = next(e for e in events if e["kind"] == "command" and e["to"] == "retry")
    assert retried["actor"] == "api:anonymous" and "steps 4, 5 run again" in retried["message"]
    assert events.index(failed) < events.index(retried)
    # the loaders and connectors ran once: launched, loading, finished — and nothing after
    for index in range(4):
        path = [e["to"] for e in events if e["kind"] == "step.status" and e["step"] == index]
        assert path[0] == "launching" and path[-1] == "finished" and "pending" not in path
    # the late report of the killed run recorded nothing
    assert events[-1]["kind"] == "queue.status" and events[-1]["to"] == "finished"


def test_retry_from_a_step_also_reruns_everything_downstream(
    service: Service, historical: dict[str, Any]
) -> None:
    queue_id = service.start_queue(historical)
    wait_for(lambda: service.queue(queue_id)["steps"][4]["status"] == "loading", 40)
    service.post(f"/queues/stop?queue_id={queue_id}&force=true")
    service.wait_status(queue_id, {"stopped"}, 20)
    answer = service.post(f"/queues/{queue_id}/retry", params={"from_step": 2})
    assert answer.status_code == 200, answer.text
    done = service.wait_status(queue_id, {"finished", "error"}, 40)
    assert done["status"] == "finished", done
    assert [s["run"] for s in done["steps"]] == [0, 0, 1, 0, 1, 1]
    assert done["stopped_by"] is None


def test_resubmit_starts_a_new_queue_from_the_same_request(
    service: Service, single: dict[str, Any]
) -> None:
    first = service.start_queue(single)
    running = service.post(f"/queues/{first}/resubmit")
    assert running.status_code == 409  # only an ended queue can be resubmitted
    service.wait_status(first, {"finished"}, 30)
    answer = service.post(f"/queues/{first}/resubmit")
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert data["resubmitted_from"] == first and data["queue_id"] != first
    second = service.queue(data["queue_id"])
    assert second["resubmitted_from"] == first
    assert second["request"] == service.queue(first)["request"]
    assert service.wait_status(data["queue_id"], {"finished"}, 30)["status"] == "finished"
