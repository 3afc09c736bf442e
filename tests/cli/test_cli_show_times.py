"""`queue-manager show` prints `ran_for` (docs/api.md "Records and duration"): the time the
queue's steps ran, each attempt from its launch (not before the queue's start) to its end, the
same as the dashboard's "Ran for"."""

from __future__ import annotations

from datetime import datetime

import httpx

from tests.cli.helpers import Server, run_cli
from tests.support.service import wait_for


def _span(seconds: float) -> str:
    s = int(seconds)
    return f"{s}s" if s < 60 else f"{s // 60}m {s % 60}s"


def test_show_prints_the_time_the_steps_ran(server: Server) -> None:
    body = {"symbol": "BTCUSDT", "type": "api", "time_range": "2024-01-01:2024-01-01"}
    queue_id = httpx.post(f"{server.url}/queues/start", json=body, timeout=10).json()["data"][
        "queue_id"
    ]

    def ended() -> dict[str, object] | None:
        queue = httpx.get(f"{server.url}/queues/{queue_id}", timeout=10).json()["data"]
        return queue if queue["status"] in ("finished", "error") else None

    queue = wait_for(ended, 60)
    [attempt] = queue["steps"][0]["attempts_log"]  # type: ignore[index]
    # one attempt, counted from the queue's start (its worker's) to its end
    took = datetime.fromisoformat(attempt["ended_at"]) - max(
        datetime.fromisoformat(attempt["started_at"]), datetime.fromisoformat(queue["started_at"])
    )
    shown = run_cli("show", queue_id, api_url=server.url)
    assert shown.returncode == 0, shown.stderr
    row = next(line for line in shown.stdout.splitlines() if line.startswith("ran_for"))
    assert row.split()[1:] == _span(took.total_seconds()).split()
