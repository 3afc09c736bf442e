"""A dependency down at start-up: the service stays live, says which one is down, answers 503,
and recovers by itself once it is back (no restart)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
