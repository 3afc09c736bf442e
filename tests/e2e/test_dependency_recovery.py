"""A dependency down at start-up: the service stays live, says which one is down, answers 503,
and recovers by itself once it is back (no restart)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tests.support.files import immutable
from tests.support.service import Service, wait_for


def test_store_unavailable_at_start_up_then_recovers(
    tmp_path: Path, single: dict[str, Any]
) -> None:
    blocker = tmp_path / "store"
    blocker.write_text("a file where the store's directory should be")
    svc = Service(tmp_path / "svc", env={"SQLITE_PATH": str(blocker / "qm.db")})
    try:
        svc.start(wait_ready=False)
        wait_for(lambda: svc.get("/health/live").status_code == 200, 30)
        ready = svc.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["data"]["store"]["ok"] is False
        assert "store" in ready.json()["message"]
        answer = svc.post("/queues/start", json=single)
        assert answer.status_code == 503 and answer.json()["status"] == "error"
        assert svc.get("/queues").status_code == 503

        blocker.unlink()
        wait_for(lambda: svc.get("/health/ready").status_code == 200, 30)
        queue_id = svc.start_queue(single)
        assert svc.wait_status(queue_id, {"finished"}, 30)["status"] == "finished"
    finally:
        svc.stop()
        svc.kill_workers()


def test_readiness_proves_the_store_takes_writes_and_recovers(
    tmp_path: Path, single: dict[str, Any]
) -> None:
    svc = Service(tmp_path / "svc").start()
    db = svc.data_dir / "queue-manager.db"
    try:
        # The database and its write-ahead log turn unwritable under the running service.
        with immutable([db, db.with_name(db.name + "-wal")]):
            ready = svc.get("/health/ready")
            assert ready.status_code == 503, ready.text
            assert ready.json()["message"] == "Unavailable: store"
            assert "cannot write" in ready.json()["data"]["store"]["detail"]
            answer = svc.post("/queues/start", json=single)
            assert answer.status_code == 503, answer.text
            message = answer.json()["message"]
            assert "store unavailable: cannot write" in message and "rollback" not in message
        wait_for(lambda: svc.get("/health/ready").status_code == 200, 30)
        queue_id = svc.start_queue(single)
        assert svc.wait_status(queue_id, {"finished"}, 30)["status"] == "finished"
    finally:
        svc.stop()
        svc.kill_workers()


def test_a_store_deleted_under_the_service_is_not_written_to(
    tmp_path: Path, single: dict[str, Any]
) -> None:
    data = tmp_path / "data"
    svc = Service(tmp_path / "svc", env={"DATA_DIR": str(data)}).start()
    try:
        before = svc.start_queue(single)
        svc.wait_status(before, {"finished"}, 30)
        shutil.rmtree(data)
        (data / "jobs").mkdir(parents=True)  # what brought readiness back before
        ready = svc.get("/health/ready")
        assert ready.status_code == 503, ready.text
        assert ready.json()["message"] == "Unavailable: store"
        assert "removed" in ready.json()["data"]["store"]["detail"]
        answer = svc.post("/queues/start", json=single)
        assert answer.status_code == 503, answer.text  # never acknowledged, so never lost
        assert "removed" in answer.json()["message"]
        assert svc.get("/health/ready").status_code == 503  # still: nothing recreated it

        svc.stop()
        svc.start()  # a restart starts an empty store where the old one was
        assert svc.get("/queues").json()["data"] == []
        queue_id = svc.start_queue(single)
        assert svc.wait_status(queue_id, {"finished"}, 30)["status"] == "finished"
    finally:
        svc.stop()
        svc.kill_workers()
