"""Rate-limit groups end to end (issue 30, acceptance 1; docs/operations.md "Rate-limit
groups"), with real reference-worker processes: a loader answered HTTP 429 with Retry-After 7
opens the exchange group; a queue of the group started meanwhile launches only once it closes,
a queue of no group is not held, and the loader's own retry finishes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.cli.helpers import run_cli
from tests.support.history import history_of
from tests.support.service import Service, wait_for

RANGE = "2024-01-01:2024-01-03"
RATE_LIMITED = {
    "symbol": "BTCUSDT",
    "type": "api",
    "time_range": RANGE,
    "simulate": {"fail_after": 1, "http_status": 429, "retry_after": 7},
    "retry": {"limit": 2, "on": ["rate_limited"]},
}
SAME_GROUP = {"symbol": "ETHUSDT", "type": "api", "time_range": RANGE}
NO_GROUP = {"symbol": "ETHUSDT", "type": "ws", "time_range": RANGE}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    svc = Service(tmp_path / "svc", env={"RATE_LIMIT_RELEASE_PER_SECOND": "2"}).start()
    yield svc
    svc.stop()
    svc.kill_workers()


def _exchange(service: Service) -> dict[str, Any]:
    answer = service.get("/rate-limits")
    assert answer.status_code == 200, answer.text
    groups: dict[str, dict[str, Any]] = {g["group"]: g for g in answer.json()["data"]}
    return groups["exchange"]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_429_holds_the_exchange_group_until_it_closes(service: Service) -> None:
    assert _exchange(service)["open"] is False
    first = service.start_queue(RATE_LIMITED)
    opened = wait_for(lambda: (g := _exchange(service))["open"] and g, 30, what="exchange open")
    until = _at(opened["until"])
    assert opened["queue_id"] == first and "429" in opened["reason"]

    held = service.start_queue(SAME_GROUP)
    other = service.start_queue(NO_GROUP)
    # The held one waits, saying why (looked at first: the group is open for 7 s only) ...
    waiting = wait_for(
        lambda: (s := service.queue(held)["steps"][0])["waiting"] and s, 30, what="held"
    )
    assert waiting["status"] == "pending", waiting
    assert waiting["waiting"].startswith("rate limit of group exchange open until ")
    metrics = service.get("/metrics").text
    assert 'queue_manager_rate_limit_open{group="exchange"} 1.0' in metrics
    shown = run_cli("rate-limits", api_url=service.url)
    assert shown.returncode == 0, shown.stderr
    row = next(line for line in shown.stdout.splitlines() if line.startswith("exchange"))
    assert "open" in row and "429" in row
    # ... while a queue of no group runs: it launched before the group closed.
    ran = wait_for(
        lambda: (
            (s := service.queue(other)["steps"][0])["status"] in ("started", "loading", "finished")
            and s
        ),
        30,
        what="the ws queue to run",
    )
    assert _at(ran["launched_at"]) < until, ran

    done = service.wait_status(held, {"finished", "error"}, 60)
    assert done["status"] == "finished", done
    assert _at(done["steps"][0]["launched_at"]) >= until
    assert not any(e["kind"] == "rate_limit" for e in history_of(service, held))

    retried = service.wait_status(first, {"finished", "error"}, 60)
    assert retried["status"] == "finished", retried
    attempts = retried["steps"][0]["attempts_log"]
    assert len(attempts) == 2 and attempts[0]["class"] == "rate_limited"
    assert _at(attempts[1]["started_at"]) >= until
    # The history of the queue whose failure opened it says so, once.
    opening = [e for e in history_of(service, first) if e["kind"] == "rate_limit"]
    assert len(opening) == 1 and opening[0]["actor"] == "rate-limiter"

    closed = _exchange(service)
    assert closed["open"] is False and closed["until"] is None and closed["strikes"] == 1
    listed = json.loads(run_cli("rate-limits", "--json", api_url=service.url).stdout)
    assert listed[0]["group"] == "exchange" and listed[0]["open"] is False
