"""`queue-manager schedule …` and `queue-manager backfill` against a real `queue-manager serve`
(docs/schedules.md)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.helpers import Server, run_cli
from tests.support.service import wait_for


def test_a_schedule_from_create_to_delete(server: Server) -> None:
    created = run_cli(
        "schedule", "create", "nightly-candles",
        "--cron", "15 0 * * *", "--timezone", "Europe/London",
        "--symbol", "btcusdt", "--symbol", "ETHUSDT",
        "--type", "api_candles_5m", "--window", "1d", "--concurrency-policy", "Forbid",
        api_url=server.url,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "schedule nightly-candles created; next run" in created.stderr

    listed = run_cli("schedule", "list", api_url=server.url)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if "nightly-candles" in line)
    assert "15 0 * * *" in row and "BTCUSDT,ETHUSDT" in row and "Forbid" in row

    shown = json.loads(run_cli("schedule", "show", "nightly-candles", api_url=server.url).stdout)
    assert shown["template"] == {"type": "api_candles_5m", "window": "1d"}
    assert shown["next_run"].endswith(":15:00+00:00") or shown["next_run"].endswith(":15:00Z")

    assert run_cli("schedule", "pause", "nightly-candles", api_url=server.url).returncode == 0
    paused = run_cli("schedule", "list", "--json", api_url=server.url)
    assert json.loads(paused.stdout)[0]["paused"] is True
    assert run_cli("schedule", "resume", "nightly-candles", api_url=server.url).returncode == 0
    runs = run_cli("schedule", "runs", "nightly-candles", api_url=server.url)
    assert runs.returncode == 0 and "tick" in runs.stdout  # no tick yet: the header only

    gone = run_cli("schedule", "delete", "nightly-candles", api_url=server.url)
    assert gone.returncode == 0, gone.stderr
    missing = run_cli("schedule", "show", "nightly-candles", api_url=server.url)
    assert missing.returncode == 1 and "Schedule nightly-candles not found" in missing.stderr


def test_a_bad_schedule_exits_1_naming_the_field(server: Server) -> None:
    done = run_cli(
        "schedule", "create", "broken", "--cron", "every night", "--symbol", "BTCUSDT",
        "--type", "api", "--window", "1d",
        api_url=server.url,
    )  # fmt: skip
    assert done.returncode == 1
    assert "cron" in done.stderr and "5 fields" in done.stderr


def test_a_bad_schedule_name_is_refused_in_words(server: Server) -> None:
    done = run_cli(
        "schedule", "create", "Nightly_Candles", "--cron", "15 0 * * *", "--symbol", "BTCUSDT",
        "--type", "api", "--window", "1d",
        api_url=server.url,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: Invalid request",
        "  name: must be 1 to 63 lowercase letters, digits or '-', starting and ending with a "
        "letter or digit, e.g. nightly-candles",
    ]
    shown = run_cli("schedule", "show", "Nightly_Candles", api_url=server.url)
    assert shown.returncode == 1 and "lowercase letters, digits or '-'" in shown.stderr


def test_backfill_prints_the_parent_and_list_shows_its_children(
    server: Server, tmp_path: Path
) -> None:
    body = tmp_path / "backfill.json"
    body.write_text(json.dumps({"type": "api_candles_5m", "time_range": "2024-01-01:2024-02-29"}))
    done = run_cli(
        "backfill", "-f", str(body), "--chunk", "month", "--symbol", "BTCUSDT",
        "--max-parallel", "2",
        api_url=server.url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    parent = done.stdout.strip()
    children = run_cli("list", "--parent", parent, "--json", api_url=server.url)
    queues = json.loads(children.stdout)["queues"]
    assert sorted(q["time_range"] for q in queues) == [
        "2024-01-01:2024-01-31",
        "2024-02-01:2024-02-29",
    ]
    finished = wait_for(
        lambda: (
            q
            if (q := json.loads(run_cli("show", parent, "--json", api_url=server.url).stdout))[
                "status"
            ]
            in ("finished", "error")
            else None
        ),
        60,
    )
    assert finished["status"] == "finished"
