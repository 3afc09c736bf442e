"""Text that came from outside — a worker's error message, its log — is printed by the CLI with
its control characters escaped (`\\x1b`), never acted upon by the terminal (issue 27): `show`,
`events`, `watch` and `logs`; `logs --raw` is the one way to get the bytes as written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from queue_manager.api.worker_auth import WorkerTokens
from tests.cli.helpers import Server, run_cli, start_server
from tests.support.service import wait_for

SECRET = "cli-escaping-worker-token-secret"
#: a window title, a cleared screen, a colour, a right-to-left override and a bell
EVIL = "\x1b]0;pwned\x07\x1b[2J\x1b[31mboom\u202eevil\x07"
SHOWN = "\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31mboom\\u202eevil\\x07"
#: wide enough that no table cell or line is wrapped
WIDE = {"COLUMNS": "1000"}


@pytest.fixture(scope="module")
def reporting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A service whose worker tokens the test can mint, with workers that run until told."""
    srv = start_server(
        tmp_path_factory.mktemp("cli-escaping"), WORKER_TOKEN_SECRET=SECRET, QM_WORKER_DURATION="60"
    )
    try:
        yield srv
    finally:
        srv.terminate()
        srv.kill_workers()


def report(server: Server, queue_id: str, producer: str, **fields: object) -> None:
    token = WorkerTokens(SECRET.encode()).token(producer)
    answer = httpx.post(
        f"{server.url}/internal/telemetry",
        json={"queue_id": queue_id, "producer": producer, **fields},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answer.status_code == 202, answer.text


def state(server: Server, queue_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{server.url}/queues/{queue_id}", timeout=10)
    data: dict[str, Any] = answer.json()["data"]
    return data


@pytest.fixture(scope="module")
def failed(reporting: Server) -> tuple[str, dict[str, Any]]:
    """A queue whose worker failed with EVIL as its error message."""
    done = run_cli(
        "start", "--symbol", "BTCUSDT", "--type", "ws", "--time-range", "2024-01-01:2024-01-01",
        api_url=reporting.url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    queue_id = done.stdout.strip()
    step = wait_for(
        lambda: (s := state(reporting, queue_id)["steps"][0])["status"] == "loading" and s,
        timeout=30,
    )
    report(reporting, queue_id, step["telemetry_id"], event="error", error_message=EVIL)
    wait_for(lambda: state(reporting, queue_id)["status"] == "error", timeout=30)
    return queue_id, step


def assert_escaped(output: str) -> None:
    assert "\x1b" not in output and "\x07" not in output and "\u202e" not in output
    assert SHOWN in output


def test_show_escapes_the_workers_error_message(
    reporting: Server, failed: tuple[str, dict[str, Any]]
) -> None:
    queue_id, _ = failed
    assert EVIL in str(state(reporting, queue_id)["error_message"])  # stored as sent

    done = run_cli("show", queue_id, api_url=reporting.url, env=WIDE)

    assert done.returncode == 0, done.stderr
    assert_escaped(done.stdout)
    # --json is JSON: its own escapes (\u001b), decoded back to the very text
    as_json = run_cli("show", queue_id, "--json", api_url=reporting.url)
    assert "\x1b" not in as_json.stdout and "\\u001b" in as_json.stdout


def test_events_and_watch_escape_it_too(
    reporting: Server, failed: tuple[str, dict[str, Any]]
) -> None:
    queue_id, _ = failed
    events = run_cli("events", queue_id, api_url=reporting.url, env=WIDE)
    assert events.returncode == 0, events.stderr
    assert_escaped(events.stdout)

    watched = run_cli("watch", queue_id, "--plain", api_url=reporting.url, env=WIDE)
    assert watched.returncode == 1  # it ended in error
    assert_escaped(watched.stdout)


def test_logs_escape_the_workers_output_unless_raw(
    reporting: Server, failed: tuple[str, dict[str, Any]]
) -> None:
    queue_id, step = failed
    log = reporting.data_dir / "jobs" / f"{step['job_name']}.log"
    with open(log, "ab") as out:
        out.write(f"line one\n{EVIL}\ttabbed\nlast line\n".encode())

    shown = run_cli("logs", queue_id, "0", api_url=reporting.url)
    assert shown.returncode == 0, shown.stderr
    assert_escaped(shown.stdout)
    assert "line one\n" in shown.stdout and "\ttabbed\nlast line\n" in shown.stdout

    raw = run_cli("logs", queue_id, "0", "--raw", api_url=reporting.url)
    assert raw.returncode == 0, raw.stderr
    assert f"{EVIL}\ttabbed\n" in raw.stdout
