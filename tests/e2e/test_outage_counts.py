"""Workers that finish while the service is down, longer than their delivery deadline: their
final counts are not lost. A restarted service reads them from what each worker left, its exit
file (docs/operations.md, docs/worker-protocol.md)."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

from tests.support.service import Service, pid_alive, wait_for

WORKER = Path(__file__).parent.parent / "support" / "outage_worker.py"
TWO_LOADERS = {
    "symbol": "BTCUSDT",
    "time_range": "2024-06-01:2024-06-02",
    "requests": [
        {"target": "loader-producer", "type": "api_candles_5m"},
        {"target": "loader-producer", "type": "api_trades"},
    ],
}


def test_final_counts_survive_an_outage_longer_than_the_delivery_deadline(tmp_path: Path) -> None:
    go = tmp_path / "go"
    svc = Service(
        tmp_path / "svc",
        env={
            "LOCAL_WORKER_COMMAND": f"{sys.executable} {WORKER}",
            "OUTAGE_GO_FILE": str(go),
            "OUTAGE_DELIVERY_DEADLINE": "1",
        },
    ).start()
    try:
        queue_id = svc.start_queue(TWO_LOADERS)

        def reported_800() -> dict[str, Any] | None:
            queue = svc.queue(queue_id)
            return queue if all(s["records_written"] == 800 for s in queue["steps"]) else None

        jobs = [s["job_name"] for s in wait_for(reported_800, 30)["steps"]]
        pids = [svc.job_record(job)["pid"] for job in jobs]
        svc.stop(signal.SIGKILL)
        # The workers go on, finish, fail to deliver past their deadline, and exit.
        go.touch()
        wait_for(lambda: not any(pid_alive(pid) for pid in pids), 30)
        exits = [json.loads((svc.data_dir / "jobs" / f"{job}.exit").read_text()) for job in jobs]
        assert [(e["outcome"], e["records_written"]) for e in exits] == [("finished", 2400)] * 2

        svc.start()
        done = svc.wait_status(queue_id, {"finished", "error", "stopped"}, 30)
        assert done["status"] == "finished", done
        assert [s["records_written"] for s in done["steps"]] == [2400, 2400]
        assert done["records_written"] == 4800
    finally:
        svc.stop()
        svc.kill_workers()
