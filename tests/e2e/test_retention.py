"""RETENTION_DAYS end to end: the ended queue goes, the running one stays (docs/operations.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.service import Service, wait_for


def _pruned(service: Service) -> float:
    for line in service.get("/metrics").text.splitlines():
        if line.startswith("queue_manager_queues_pruned_total "):
            return float(line.split()[-1])
    return 0.0


def test_ended_queues_expire_and_running_ones_stay(tmp_path: Path, single: dict[str, Any]) -> None:
    service = Service(
        tmp_path / "svc",
        # about 2 s of retention, swept twice a second
        env={"RETENTION_DAYS": "0.00002", "RETENTION_SWEEP_SECONDS": "0.5",
             "LOCAL_WORKER_ARGS": "--duration 1"},
    ).start()  # fmt: skip
    try:
        ended = service.start_queue(single)
        streaming = service.start_queue({**single, "type": "ws"})
        service.wait_status(ended, {"finished"}, 30)
        wait_for(lambda: service.get(f"/queues/{ended}").status_code == 404, 20)
        assert service.queue(streaming)["status"] in ("pending", "loading")
        assert _pruned(service) == 1
        ids = [q["id"] for q in service.get("/queues").json()["data"]]
        assert ids == [streaming]
    finally:
        service.stop()
        service.kill_workers()
