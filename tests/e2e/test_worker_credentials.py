"""A local worker's credential (`QM_WORKER_TOKEN`) names one run of one step and dies with it
(docs/security.md, docs/worker-protocol.md): real service, real worker processes, the credential
read from a worker's own environment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.service import Service, pid_alive, wait_for


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    # Loaders that run until stopped keep the pipeline's later steps pending meanwhile.
    svc = Service(
        tmp_path / "svc", env={"STOP_GRACE_SECONDS": "2", "LOCAL_WORKER_ARGS": "--duration 600"}
    ).start()
    yield svc
    svc.stop()
    svc.kill_workers()


def _worker_token(service: Service, step: dict[str, Any]) -> str:
    """The credential the step's worker process was given, from its environment."""
    pid = wait_for(lambda: service.job_record(step["job_name"])["pid"], 15)
    assert pid_alive(pid)
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    token = next(v for v in environ if v.startswith(b"QM_WORKER_TOKEN="))
    return token.split(b"=", 1)[1].decode()


def _report(
    service: Service, token: str, queue_id: str, producer: str | None, **body: Any
) -> httpx.Response:
    report = {"queue_id": queue_id, "sent_at": "2026-01-01T00:00:00Z", **body}
    if producer is not None:
        report["producer"] = producer
    return service.post(
        "/internal/telemetry", json=report, headers={"Authorization": f"Bearer {token}"}
    )


def _poll(service: Service, token: str, queue_id: str, producer: str) -> httpx.Response:
    return service.get(
        "/internal/commands",
        params={"queue_id": queue_id, "producer": producer},
        headers={"Authorization": f"Bearer {token}"},
    )


def _loading(service: Service, queue_id: str, indexes: range) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        queue = service.queue(queue_id)
        return queue if all(queue["steps"][i]["status"] == "loading" for i in indexes) else None

    return wait_for(check, 30)


def test_a_worker_credential_speaks_for_its_own_step_run_only(
    service: Service, historical: dict[str, Any], realtime: dict[str, Any]
) -> None:
    queue_id = service.start_queue(historical)
    other_id = service.start_queue(realtime)
    queue = _loading(service, queue_id, range(4))
    other = _loading(service, other_id, range(7))
    steps = queue["steps"]
    token = _worker_token(service, steps[0])
    assert token != _worker_token(service, steps[1])  # one credential per step, not per queue

    # Its own step: accepted, as the worker's own reports are.
    own = _report(service, token, queue_id, steps[0]["telemetry_id"], event="loading",
                  records_written=7)  # fmt: skip
    assert own.status_code == 202, own.text
    assert _poll(service, token, queue_id, steps[0]["telemetry_id"]).status_code == 200

    # Any other step, of its queue or another, or no step named at all: refused, and nothing moves.
    probes = [
        (queue_id, steps[5]["telemetry_id"], {"event": "finished", "records_written": 10**9}),
        (queue_id, steps[1]["telemetry_id"], {"event": "error", "error_message": "forged"}),
        (other_id, other["steps"][6]["telemetry_id"], {"event": "error", "error_message": "x"}),
        (queue_id, None, {"event": "finished", "type": "gnn_train"}),
    ]
    for target_queue, producer, body in probes:
        answer = _report(service, token, target_queue, producer, **body)
        assert answer.status_code == 401, (producer, answer.text)
        assert answer.json()["status"] == "error"
        if producer is None:
            assert "producer" in answer.json()["message"]
        else:
            assert producer in answer.json()["message"]
        polled = _poll(service, token, target_queue, producer or "")
        assert polled.status_code == 401, polled.text
    queue = service.queue(queue_id)
    assert [s["status"] for s in queue["steps"]][4:] == ["pending", "pending"]
    assert queue["steps"][1]["status"] == "loading" and queue["steps"][1]["error_message"] is None
    assert max(s["records_written"] for s in queue["steps"]) < 10**9
    assert service.queue(other_id)["steps"][6]["status"] == "loading"

    # It dies with its run: once the step has ended, its own reports and polls are refused.
    assert service.post(f"/queues/stop?queue_id={queue_id}&force=true").status_code == 200
    service.wait_status(queue_id, {"stopped"}, 20)
    late = _report(service, token, queue_id, steps[0]["telemetry_id"], event="finished",
                   records_written=999_999_999)  # fmt: skip
    assert late.status_code == 403, late.text
    assert "ended" in late.json()["message"]
    assert _poll(service, token, queue_id, steps[0]["telemetry_id"]).status_code == 403

    # A retry runs the step again: the new run's worker gets a new credential, and the old run's
    # can neither report for the new run nor for itself.
    assert service.post(f"/queues/{queue_id}/retry").status_code == 200
    retried = _loading(service, queue_id, range(4))["steps"]
    assert retried[0]["run"] == 1
    new_token = _worker_token(service, retried[0])
    assert new_token != token
    for producer, status in ((retried[0]["telemetry_id"], 401), (steps[0]["telemetry_id"], 403)):
        answer = _report(service, token, queue_id, producer, event="finished",
                         records_written=999_999_999)  # fmt: skip
        assert answer.status_code == status, answer.text
    fresh = _report(service, new_token, queue_id, retried[0]["telemetry_id"], event="loading",
                    records_written=5)  # fmt: skip
    assert fresh.status_code == 202, fresh.text
    queue = service.queue(queue_id)
    assert queue["status"] == "loading" and queue["steps"][0]["status"] == "loading"
    assert queue["steps"][0]["records_written"] < 999_999_999

    for qid in (queue_id, other_id):
        service.post(f"/queues/stop?queue_id={qid}&force=true")
        service.wait_status(qid, {"stopped"}, 20)
