"""docs/schedules.md#backfill: a long range cut by month for two symbols, children admitted
`max_parallel` at a time, the parent derived from them; stopping the parent stops them all."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

from tests.support.service import Service, wait_for

BODY: dict[str, Any] = {
    "symbols": ["BTCUSDT", "ETHUSDT"],
    "type": "api_candles_5m",
    "time_range": "2024-01-01:2024-03-31",
    "chunk": "month",
    "max_parallel": 2,
}


def _max_running(db: Path, parent: str, stop: threading.Event, seen: list[int]) -> None:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        while not stop.is_set():
            (n,) = conn.execute(
                "SELECT COUNT(*) FROM queue_state WHERE parent = ? "
                "AND status IN ('pending', 'loading', 'stopping')",
                (parent,),
            ).fetchone()
            seen.append(int(n))
            stop.wait(0.02)  # the sampling interval (not a wait: it samples until stopped)
    finally:
        conn.close()


def children(service: Service, parent: str) -> list[dict[str, Any]]:
    answer = service.get("/queues", params={"parent": parent, "limit": 100})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["data"])


def test_backfill_by_month_runs_two_at_a_time_and_the_parent_finishes(service: Service) -> None:
    answer = service.post("/queues/backfill", json=BODY)
    assert answer.status_code == 200, answer.text
    parent = answer.json()["data"]["queue_id"]
    seen: list[int] = []
    stop = threading.Event()
    sampler = threading.Thread(
        target=_max_running, args=(service.data_dir / "queue-manager.db", parent, stop, seen)
    )
    sampler.start()
    try:
        final = service.wait_status(parent, {"finished", "error", "stopped"}, 120)
    finally:
        stop.set()
        sampler.join()
    assert final["status"] == "finished", final
    assert final["backfill"]["progress"]["finished"] == 6
    kids = children(service, parent)
    names = sorted(k["steps"][0]["collection_name"] for k in kids)
    assert names == [
        f"{asset}_candles_5m_2024_{month:02d}" for asset in ("btc", "eth") for month in (1, 2, 3)
    ]
    assert {k["status"] for k in kids} == {"finished"}
    assert all(k["parent"] == parent for k in kids)
    assert final["records_written"] == sum(k["records_written"] for k in kids) > 0
    # its duration runs from its first child's start to its end
    assert final["started_at"] == min(k["started_at"] for k in kids)
    assert final["finished_at"] >= max(k["finished_at"] for k in kids)
    assert max(seen) == 2  # the limit was reached and never passed
    # The other queues' list does not mix in a parent's children when filtered by parent.
    assert parent not in {k["id"] for k in kids}


def test_stopping_the_parent_mid_way_leaves_no_child_running(tmp_path: Path) -> None:
    svc = Service(
        tmp_path / "svc", env={"STOP_GRACE_SECONDS": "3", "LOCAL_WORKER_ARGS": "--duration 30"}
    ).start()
    try:
        parent = svc.post("/queues/backfill", json=BODY).json()["data"]["queue_id"]
        wait_for(
            lambda: sum(k["status"] == "loading" for k in children(svc, parent)) == 2 or None, 30
        )
        answer = svc.post("/queues/stop", params={"queue_id": parent})
        assert answer.status_code == 200, answer.text
        final = svc.wait_status(parent, {"stopped", "finished", "error"}, 30)
        assert final["status"] == "stopped", final
        kids = children(svc, parent)
        assert {k["status"] for k in kids} == {"stopped"}
        assert final["backfill"]["progress"]["stopped"] == 6
        # Retrying the parent runs again only what did not finish: here, every child.
        retried = svc.post(f"/queues/{parent}/retry")
        assert retried.status_code == 200, retried.text
        again = svc.queue(parent)
        assert again["status"] in ("pending", "loading"), again
        assert {k["status"] for k in children(svc, parent)} <= {"queued", "pending", "loading"}
        svc.post("/queues/stop", params={"queue_id": parent, "force": "true"})
        svc.wait_status(parent, {"stopped"}, 30)
    finally:
        svc.stop()
        svc.kill_workers()


def test_backfill_refuses_what_it_cannot_cut(service: Service) -> None:
    cases = {
        "chunk": {**BODY, "time_range": "2024-01-01:2024-01-20"},  # a month is longer
        "max_parallel": {**BODY, "max_parallel": 0},
        "symbols.0": {**BODY, "symbols": ["btc-usdt"]},  # the item refused
        "time_range": {**BODY, "time_range": "2024-03-31:2024-01-01"},
        "window": {**BODY, "window": "1d"},
    }
    for field, body in cases.items():
        answer = service.post("/queues/backfill", json=body)
        assert answer.status_code == 422, (field, answer.text)
        fields = [e["field"] for e in answer.json()["data"]["errors"]]
        assert field in fields, (field, fields)
    listed = service.get("/queues").json()["data"]
    assert listed == []  # nothing was created by a refused backfill
