"""Acceptance 1 of the coverage ledger (docs/coverage.md), with real reference workers: a
backfill of two symbols over 2024-01..2024-06 by month where the ETHUSDT March chunk fails and
the May chunk of each symbol stops halfway. The ledger shows exactly those cells; the fill's dry
run proposes exactly those chunks; the fill runs only them; afterwards everything is complete,
and a second fill starts nothing."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.service import Service, wait_for

TYPE = "api_candles_5m"
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
MARCH = "2024-03-01:2024-03-31"
MAY = "2024-05-01:2024-05-31"
#: 12 ticks of 50 ms a chunk: the May chunk stops after 6, halfway through the month
FAST = {
    "STOP_GRACE_SECONDS": "2",
    "LOCAL_WORKER_ARGS": "--duration 0.6 --tick 0.05",
    "COVERAGE_METRICS_SECONDS": "0.2",
}


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _by_day(service: Service) -> dict[tuple[str, date], dict[str, Any]]:
    """Each (symbol, day) of 2024-01..06 with the run that holds it."""
    answer = service.get(
        "/coverage",
        params={"symbol": SYMBOLS, "type": TYPE, "from": "2024-01-01", "to": "2024-06-30"},
    )
    assert answer.status_code == 200, answer.text
    days = {}
    for row in answer.json()["data"]["rows"]:
        assert row["type"] == TYPE
        for run in row["runs"]:
            for day in _days(date.fromisoformat(run["from"]), date.fromisoformat(run["to"])):
                days[(row["symbol"], day)] = run
    return days


def _children(service: Service, parent: str) -> list[dict[str, Any]]:
    answer = service.get("/queues", params={"parent": parent, "limit": 100})
    assert answer.status_code == 200, answer.text
    children: list[dict[str, Any]] = answer.json()["data"]
    return children


def _fill(service: Service, **extra: Any) -> dict[str, Any]:
    body = {
        "symbols": SYMBOLS,
        "types": [TYPE],
        "time_range": "2024-01-01:2024-06-30",
        "chunk": "month",
        "max_parallel": 3,
        "template": {"type": TYPE},
        **extra,
    }
    answer = service.post("/coverage/fill", json=body)
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


def test_a_backfill_with_a_failed_and_a_stopped_chunk_is_filled_exactly(tmp_path: Path) -> None:
    with Service(tmp_path / "svc", env=FAST) as service:
        started = service.post(
            "/queues/backfill",
            json={
                "symbols": SYMBOLS,
                "time_range": "2024-01-01:2024-06-30",
                "chunk": "month",
                "max_parallel": 6,
                "type": TYPE,
                "simulate": [
                    {"fail_after": 0, "only": {"symbol": "ETHUSDT", "time_range": MARCH}},
                    {"interrupt_after": 6, "only": {"time_range": MAY}},
                ],
            },
        )
        assert started.status_code == 200, started.text
        parent = started.json()["data"]["queue_id"]
        service.wait_status(parent, {"error", "stopped", "finished"}, 90)
        children = {(c["symbol"], c["time_range"]): c for c in _children(service, parent)}
        assert len(children) == 12
        ended = {key: c["status"] for key, c in children.items() if c["status"] != "finished"}
        assert ended == {
            ("ETHUSDT", MARCH): "error",
            ("BTCUSDT", MAY): "stopped",
            ("ETHUSDT", MAY): "stopped",
        }

        # The ledger: exactly those cells, each with the queue that produced it.
        days = _by_day(service)
        for symbol in SYMBOLS:
            reached = datetime.fromisoformat(
                children[(symbol, MAY)]["steps"][0]["last_loaded_timestamp"]
            )
            assert reached.date() == date(2024, 5, 16)  # halfway: 6 of 12 ticks
            for day in _days(date(2024, 1, 1), date(2024, 6, 30)):
                run = days[(symbol, day)]
                month = day.strftime("%Y-%m")
                child = next(c for (s, r), c in children.items() if s == symbol and r[:7] == month)
                if symbol == "ETHUSDT" and day.month == 3:
                    want = "failed"
                elif day.month == 5 and day.day == 16:
                    want = "partial"
                    assert datetime.fromisoformat(run["loaded_until"]) == reached
                elif day.month == 5 and day.day > 16:
                    want = "failed"
                else:
                    want = "complete"
                assert (run["state"], run["queue_id"]) == (want, child["id"]), (symbol, day, run)

        plan = _fill(service, dry_run=True)
        wanted = [
            {"symbol": "BTCUSDT", "type": TYPE, "time_range": "2024-05-16:2024-05-31"},
            {"symbol": "ETHUSDT", "type": TYPE, "time_range": MARCH},
            {"symbol": "ETHUSDT", "type": TYPE, "time_range": "2024-05-16:2024-05-31"},
        ]
        assert plan == {"chunks": wanted, "queue_id": None}
        assert len(service.get("/queues", params={"limit": 100}).json()["data"]) == 13

        # The fill: a backfill of only those chunks; afterwards every day is complete.
        filled = _fill(service)
        assert filled["chunks"] == wanted and filled["queue_id"] is not None
        done = service.wait_status(filled["queue_id"], {"finished", "error", "stopped"}, 60)
        assert done["status"] == "finished", done
        assert done["backfill"]["children"] == 3
        ran = sorted((c["symbol"], c["time_range"]) for c in _children(service, done["id"]))
        assert ran == sorted((c["symbol"], c["time_range"]) for c in wanted)
        days = _by_day(service)
        assert {run["state"] for run in days.values()} == {"complete"}

        # Idempotent: nothing is left, so nothing starts.
        again = _fill(service)
        assert again == {"chunks": [], "queue_id": None}
        assert len(service.get("/queues", params={"limit": 100}).json()["data"]) == 17

        def gauged() -> bool:
            text = service.get("/metrics").text
            return f'queue_manager_coverage_cells{{state="complete",type="{TYPE}"}} 364.0' in text

        wait_for(gauged, 10, what="the cells gauge counts 2 x 182 complete days")
