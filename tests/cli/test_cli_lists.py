"""Issue 32 in the terminal: `list` has the dashboard's columns with backfills' children folded,
`watch` without an id is one row per queue redrawn in place (read off a tmux pane), and `show`
of a backfill's parent shows its children and their progress."""

from __future__ import annotations

import json
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.cli.helpers import CLI, Server, clean_env, run_cli
from tests.support.waiting import wait_until

#: streaming: runs until stopped
STREAM: dict[str, Any] = {"symbol": "BTCUSDT", "type": "ws", "time_range": "2024-06-01:2024-06-02"}
BACKFILL: dict[str, Any] = {
    "symbols": ["SOLUSDT"],
    "type": "ws",
    "time_range": "2024-01-01:2024-01-02",
    "chunk": "day",
    "max_parallel": 1,
}


def started(server: Server, path: str, body: dict[str, Any]) -> str:
    answer = httpx.post(f"{server.url}{path}", json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["data"]["queue_id"])


@pytest.fixture(scope="module")
def queues(server: Server) -> Iterator[dict[str, Any]]:
    stream = started(server, "/queues/start", STREAM)
    parent = started(server, "/queues/backfill", BACKFILL)
    answer = httpx.get(f"{server.url}/queues", params={"parent": parent}, timeout=10)
    children = sorted(answer.json()["data"], key=lambda q: q["time_range"])
    assert len(children) == 2
    yield {"stream": stream, "parent": parent, "children": [c["id"] for c in children]}
    for queue_id in (stream, parent):
        httpx.post(f"{server.url}/queues/stop", params={"queue_id": queue_id}, timeout=10)


def test_list_shows_pipeline_and_range_and_folds_children(
    server: Server, queues: dict[str, Any]
) -> None:
    done = run_cli("list", api_url=server.url, env={"COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "pipeline" in lines[0] and "time range" in lines[0] and "origin" in lines[0]
    stream = next(line for line in lines if queues["stream"] in line)
    assert "loader-producer" in stream and "2024-06-01 → 2024-06-02" in stream
    parent = next(line for line in lines if queues["parent"] in line)
    assert "backfill · 2 children" in parent
    assert not any(child in done.stdout for child in queues["children"])  # folded

    expanded = run_cli("list", "--expand", api_url=server.url, env={"COLUMNS": "200"})
    assert expanded.returncode == 0, expanded.stderr
    rows = expanded.stdout.splitlines()
    at = next(i for i, line in enumerate(rows) if queues["parent"] in line)
    for offset, child in enumerate(queues["children"], start=1):
        assert rows[at + offset].startswith(f"└ {child}"), rows
    assert "2024-01-01 → 2024-01-01" in rows[at + 1]

    # --parent takes the created-at range too; a bad date is refused naming the option's field
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    empty = run_cli(
        "list", "--parent", queues["parent"], "--created-from", tomorrow, api_url=server.url
    )
    assert empty.returncode == 0, empty.stderr
    assert "No queues." in empty.stdout
    today = datetime.now(UTC).date().isoformat()
    kids = run_cli(
        "list", "--parent", queues["parent"][:8], "--created-from", today, "--json",
        api_url=server.url,
    )  # fmt: skip
    assert kids.returncode == 0, kids.stderr
    assert sorted(q["id"] for q in json.loads(kids.stdout)["queues"]) == sorted(
        queues["children"]
    )
    bad = run_cli("list", "--created-from", "yesterday", api_url=server.url)
    assert bad.returncode != 0
    assert "created_from" in bad.stderr + bad.stdout


def test_show_of_a_backfill_parent_lists_its_children_and_progress(
    server: Server, queues: dict[str, Any]
) -> None:
    done = run_cli("show", queues["parent"][:8], api_url=server.url, env={"COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    assert "children ended" in done.stdout
    for child in queues["children"]:
        assert child in done.stdout
    assert "2024-01-02 → 2024-01-02" in done.stdout
    assert "No steps" not in done.stdout


def pane(session: str) -> str:
    capture = ["tmux", "capture-pane", "-p", "-t", session]
    return subprocess.run(capture, capture_output=True, text=True, check=True).stdout


def test_watch_without_id_is_one_row_per_queue_redrawn_in_place(
    server: Server, queues: dict[str, Any]
) -> None:
    session = f"qm-watch-{uuid.uuid4().hex[:8]}"
    env = clean_env(QM_API_URL=server.url, TERM="xterm-256color")
    command = " ".join(shlex.quote(part) for part in [*CLI, "watch"])
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items() if k.isidentifier())
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "30",
         f"env -i {exports} {command}"],
        check=True,
    )  # fmt: skip
    try:
        stream, parent = queues["stream"][:8], queues["parent"][:8]

        def drawn() -> str | None:
            text = pane(session)
            return text if stream in text and parent in text else None

        text = wait_until(drawn, 20, what="the watch table", detail=lambda: pane(session))
        # one row per top-level queue, short ids, children folded into their parent's row
        assert text.count(stream) == 1 and text.count(parent) == 1
        assert queues["stream"] not in text  # never the full UUID
        assert not any(child[:8] in text for child in queues["children"])
        assert "children" in next(line for line in text.splitlines() if parent in line)

        # an update redraws the row in place: still one row, now stopped
        answer = httpx.post(
            f"{server.url}/queues/stop", params={"queue_id": queues["stream"]}, timeout=10
        )
        assert answer.status_code == 200, answer.text

        def stopped() -> str | None:
            text = pane(session)
            row = [line for line in text.splitlines() if stream in line]
            return text if len(row) == 1 and "stopped" in row[0] else None

        text = wait_until(stopped, 20, what="the row to say stopped", detail=lambda: pane(session))
        assert text.count(stream) == 1 and text.count(parent) == 1
        print(text)  # what a person sees, in the test's output
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)


def test_logs_level_error_keeps_the_error_lines(server: Server) -> None:
    failing = {**STREAM, "type": "api", "simulate": {"fail_after": 2, "http_status": 400}}
    queue_id = started(server, "/queues/start", failing)

    def ended() -> bool:
        answer = httpx.get(f"{server.url}/queues/{queue_id}", timeout=10)
        return bool(answer.json()["data"]["status"] == "error")

    wait_until(ended, 30, what="the failing queue to end in error")
    plain = run_cli("logs", queue_id[:8], "0", "--level", "error", api_url=server.url)
    assert plain.returncode == 0, plain.stderr
    lines = [json.loads(line) for line in plain.stdout.splitlines()]
    assert lines and {line["level"] for line in lines} == {"error"}
    assert any("simulated HTTP 400" in line["event"] for line in lines)
    pretty = run_cli(
        "logs", queue_id, "0", "--grep", "page fetched", "--pretty", api_url=server.url,
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert pretty.returncode == 0, pretty.stderr
    rows = pretty.stdout.splitlines()
    assert len(rows) == 2 and all(" info " in row and "page fetched " in row for row in rows)
    assert all("page=" in row and "records=100" in row for row in rows)
    assert "{" not in pretty.stdout  # read, not a wall of JSON
    bad = run_cli("logs", queue_id, "0", "--level", "loud", api_url=server.url)
    assert bad.returncode == 2 and "loud" in bad.stderr
