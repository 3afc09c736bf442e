"""docs/schedules.md: a schedule's concurrency policy against a run that is still loading, and
the 422s of a schedule that could never run. The service runs on a clock 30 times faster than
real time (given to its app factory, tests/support/clocks.py), so a per-minute schedule ticks
every two seconds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.clocks import FAST_APP, FastClock
from tests.support.history import history_of
from tests.support.service import Service, wait_for

SCALE = 30


@pytest.fixture
def fast_clock_service(tmp_path: Path) -> Iterator[Service]:
    clock = FastClock(SCALE, datetime.now(UTC).replace(microsecond=0))
    svc = Service(
        tmp_path / "svc",
        env={"STOP_GRACE_SECONDS": "2", "LOCAL_WORKER_ARGS": "--duration 60", **clock.env()},
        app=FAST_APP,
    ).start()
    yield svc
    svc.stop()
    svc.kill_workers()


def every_minute(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "cron": "* * * * *",
        "symbols": ["BTCUSDT"],
        "template": {"type": "api", "window": "1d"},
        **fields,
    }


def runs(service: Service, name: str) -> list[dict[str, Any]]:
    answer = service.get(f"/schedules/{name}/runs")
    assert answer.status_code == 200, answer.text
    return list(reversed(answer.json()["data"]))  # oldest first


def test_forbid_skips_while_the_run_loads_and_replace_swaps_it(
    fast_clock_service: Service,
) -> None:
    svc = fast_clock_service
    created = svc.post("/schedules", json=every_minute("guarded", concurrency_policy="Forbid"))
    assert created.status_code == 201, created.text
    # The first tick starts a run; the next ones find it still loading and are skipped.
    wait_for(lambda: sum(r["outcome"] == "skipped" for r in runs(svc, "guarded")) >= 2 or None, 30)
    decided = runs(svc, "guarded")
    started = [r for r in decided if r["outcome"] == "started"]
    assert len(started) == 1, decided
    (first,) = started[0]["queue_ids"]
    skipped = [r for r in decided if r["outcome"] == "skipped"]
    assert all(first in r["reason"] and "Forbid" in r["reason"] for r in skipped), skipped
    queue = svc.queue(first)
    assert queue["schedule"] == "guarded" and queue["scheduled_for"] == started[0]["scheduled_for"]
    assert queue["status"] in ("pending", "loading")
    notes = [e for e in history_of(svc, first) if e["kind"] == "schedule"]
    assert notes and all("skipped" in e["message"] and e["actor"] == "scheduler" for e in notes)

    # Replace: the next tick stops the loading run and starts a new one.
    changed = svc.patch("/schedules/guarded", json={"concurrency_policy": "Replace"})
    assert changed.status_code == 200, changed.text
    wait_for(lambda: sum(r["outcome"] == "started" for r in runs(svc, "guarded")) >= 2 or None, 30)
    second = [r for r in runs(svc, "guarded") if r["outcome"] == "started"][1]["queue_ids"][0]
    old = svc.wait_status(first, {"stopped"}, 30)
    assert old["stopped_by"] == "schedule:guarded"
    assert any("replaced" in (e["message"] or "") for e in history_of(svc, first))
    assert svc.queue(second)["status"] in ("pending", "loading", "stopping", "stopped")
    paused = svc.post("/schedules/guarded/pause")
    assert paused.status_code == 200 and paused.json()["data"]["next_run"] is None


def test_a_schedule_that_could_never_run_is_refused_naming_the_field(
    fast_clock_service: Service,
) -> None:
    svc = fast_clock_service
    cases = {
        "cron": every_minute("bad-cron", cron="0 25 * * *"),
        "timezone": every_minute("bad-zone", timezone="Europe/Atlantis"),
        "template.window": every_minute("bad-window", template={"type": "api", "window": "2y"}),
        "symbols.0": every_minute("bad-symbols", symbols=["BTC/USDT"]),
        "concurrency_policy": every_minute("bad-policy", concurrency_policy="Sometimes"),
    }
    no_cron = every_minute("no-cron")
    del no_cron["cron"]
    cases["cron "] = no_cron  # a window without a cron
    for field, body in cases.items():
        answer = svc.post("/schedules", json=body)
        assert answer.status_code == 422, (field, answer.text)
        fields = [e["field"] for e in answer.json()["data"]["errors"]]
        assert field.strip() in fields, (field, fields)
    # A window belongs to a schedule's template: a plain start refuses it, naming it.
    plain = svc.post("/queues/start", json={"symbol": "BTCUSDT", "type": "api", "window": "1d"})
    assert plain.status_code == 422
    assert "window" in [e["field"] for e in plain.json()["data"]["errors"]]
    assert svc.get("/schedules").json()["data"] == []
    assert svc.get("/schedules/bad-cron").status_code == 404
