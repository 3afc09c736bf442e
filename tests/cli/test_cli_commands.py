"""start / show / list / stop / watch, run as a user would, against `queue-manager serve`."""

from __future__ import annotations

import json
import selectors
import signal
import subprocess
import uuid
from pathlib import Path

import httpx

from tests.cli.helpers import CLI, Server, clean_env, run_cli
from tests.support.service import wait_for
from tests.support.waiting import wait_until

SINGLE = ("--symbol", "BTCUSDT", "--type", "api", "--time-range", "2024-01-01:2024-01-03")


def start_queue(server: Server, *extra: str) -> str:
    done = run_cli("start", *SINGLE, *extra, api_url=server.url)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def queue_state(server: Server, queue_id: str) -> dict[str, object]:
    answer = httpx.get(f"{server.url}/queues/{queue_id}", timeout=10)
    assert answer.status_code == 200, answer.text
    data: dict[str, object] = answer.json()["data"]
    return data


def websocket_clients(server: Server) -> int:
    """The service's own count of open WebSockets (docs/operations.md metrics)."""
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    (line,) = [x for x in metrics.splitlines() if x.startswith("queue_manager_websocket_clients ")]
    return int(float(line.split()[1]))


def wait_until_subscribed(server: Server, before: int) -> None:
    """A watcher hears only what is sent after its socket opened: wait for that socket."""
    wait_for(lambda: websocket_clients(server) > before, timeout=30)


def assert_no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stderr + done.stdout


def test_start_by_flags_prints_only_the_queue_id(server: Server) -> None:
    done = run_cli("start", *SINGLE, api_url=server.url)

    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1  # one plain line: qid=$(queue-manager start ...)
    assert uuid.UUID(done.stdout.strip()).version == 4
    assert queue_state(server, done.stdout.strip())["symbol"] == "BTCUSDT"


def test_start_from_a_pipeline_file(server: Server, tmp_path: Path) -> None:
    request = {
        "symbol": "ETHUSDT",
        "time_range": "2024-06-01:2024-06-30",
        "requests": [
            {"target": "loader-producer", "type": "api_trades"},
            {"target": "arango-connector", "type": "api_trades"},
        ],
    }
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request))

    done = run_cli("start", "--file", str(path), api_url=server.url)

    assert done.returncode == 0, done.stderr
    state = queue_state(server, done.stdout.strip())
    assert [s["target"] for s in state["steps"]] == [  # type: ignore[attr-defined]
        "loader-producer",
        "arango-connector",
    ]


def test_idempotency_key_returns_the_same_queue(server: Server) -> None:
    key = f"cli-test-{uuid.uuid4()}"
    first = start_queue(server, "--idempotency-key", key)
    second = start_queue(server, "--idempotency-key", key)
    assert first == second


def test_show_prints_the_queue_and_its_steps(server: Server) -> None:
    queue_id = start_queue(server)
    job_name = queue_state(server, queue_id)["steps"][0]["job_name"]  # type: ignore[index]

    done = run_cli("show", queue_id, api_url=server.url)

    assert done.returncode == 0, done.stderr
    assert queue_id in done.stdout
    assert "BTCUSDT" in done.stdout
    for column in ("index", "target", "type", "status", "records_written", "job_name"):
        assert column in done.stdout
    assert "loader-producer" in done.stdout
    assert str(job_name) in done.stdout

    as_json = run_cli("show", queue_id, "--json", api_url=server.url)
    assert as_json.returncode == 0, as_json.stderr
    state = json.loads(as_json.stdout)
    assert state["id"] == queue_id
    assert [s["index"] for s in state["steps"]] == [0]


def test_list_lists_the_queue(server: Server) -> None:
    queue_id = start_queue(server)

    done = run_cli("list", api_url=server.url)
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if queue_id in line)
    assert "BTCUSDT" in line

    as_json = run_cli("list", "--json", "--symbol", "btcusdt", api_url=server.url)
    assert as_json.returncode == 0, as_json.stderr
    listed = json.loads(as_json.stdout)
    assert queue_id in [q["id"] for q in listed["queues"]]
    assert {q["symbol"] for q in listed["queues"]} == {"BTCUSDT"}


def test_list_pages_with_the_printed_cursor(server: Server) -> None:
    start_queue(server)
    start_queue(server)

    first = run_cli("list", "--limit", "1", api_url=server.url)
    assert first.returncode == 0, first.stderr
    cursor_lines = [line for line in first.stdout.splitlines() if line.startswith("next cursor:")]
    assert len(cursor_lines) == 1
    cursor = cursor_lines[0].removeprefix("next cursor:").strip()

    page_one = json.loads(run_cli("list", "--limit", "1", "--json", api_url=server.url).stdout)
    page_two = json.loads(
        run_cli("list", "--limit", "1", "--cursor", cursor, "--json", api_url=server.url).stdout
    )
    assert page_one["next_cursor"] == cursor
    assert page_two["queues"][0]["id"] != page_one["queues"][0]["id"]


def test_watch_exits_0_once_a_single_step_queue_finished(server: Server) -> None:
    queue_id = start_queue(server)

    done = run_cli("watch", queue_id, api_url=server.url, timeout=90)

    assert done.returncode == 0, done.stdout + done.stderr
    final = done.stdout.strip().splitlines()[-1]
    assert queue_id in final
    assert "finished" in final
    assert queue_state(server, queue_id)["status"] == "finished"
    assert_no_traceback(done)


def test_watch_of_a_stopped_queue_exits_1_with_its_status(server: Server) -> None:
    # A streaming type never finishes by itself: only the stop ends it.
    done = run_cli(
        "start",
        "--symbol",
        "BTCUSDT",
        "--type",
        "ws",
        "--time-range",
        "2024-08-01:2024-08-01",
        api_url=server.url,
    )
    assert done.returncode == 0, done.stderr
    queue_id = done.stdout.strip()
    before = websocket_clients(server)
    watcher = subprocess.Popen(
        [*CLI, "watch", queue_id],
        env=clean_env(QM_API_URL=server.url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_subscribed(server, before)
        stopped = run_cli("stop", queue_id, "--force", api_url=server.url)
        assert stopped.returncode == 0, stopped.stderr
        assert queue_id in stopped.stdout
        out, err = watcher.communicate(timeout=60)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()

    assert watcher.returncode == 1, out + err
    final = out.strip().splitlines()[-1]
    assert queue_id in final
    assert "stopped" in final
    assert "Traceback" not in err


def test_watch_without_a_queue_prints_every_update_until_ctrl_c(server: Server) -> None:
    before = websocket_clients(server)
    watcher = subprocess.Popen(
        [*CLI, "watch"],
        env=clean_env(QM_API_URL=server.url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert watcher.stdout is not None
    try:
        wait_until_subscribed(server, before)
        queue_id = start_queue(server)
        seen = b""
        selector = selectors.DefaultSelector()
        selector.register(watcher.stdout, selectors.EVENT_READ)

        def printed_finished() -> bool:
            nonlocal seen
            assert watcher.stdout is not None
            while selector.select(timeout=0):  # everything printed so far
                chunk = watcher.stdout.read1(65536)  # type: ignore[attr-defined]
                assert chunk, f"watch ended early: {seen.decode()}"
                seen += chunk
            return f"Queue {queue_id} → finished".encode() in seen

        wait_until(
            printed_finished,
            60,
            what=f"watch to print that {queue_id} finished",
            detail=lambda: f"it printed:\n{seen.decode()}",
        )
        watcher.send_signal(signal.SIGINT)
        watcher.wait(timeout=15)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()

    assert watcher.returncode == 0
    text = seen.decode()
    assert f"Queue {queue_id} step 0 loader-producer →" in text
    assert "heartbeat" not in text


def test_stop_of_an_unknown_queue_prints_the_error_and_exits_1(server: Server) -> None:
    queue_id = str(uuid.uuid4())

    done = run_cli("stop", queue_id, api_url=server.url)

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("error: ")
    assert queue_id in done.stderr
    assert "not found" in done.stderr
    assert_no_traceback(done)


def test_show_and_watch_of_an_unknown_queue_exit_1(server: Server) -> None:
    for command in ("show", "watch"):
        done = run_cli(command, "no-such-queue", api_url=server.url)
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert done.stderr.startswith("error: Queue no-such-queue not found")
        assert_no_traceback(done)


def test_invalid_start_prints_each_field_error(server: Server) -> None:
    done = run_cli(
        "start",
        "--symbol",
        "b!",
        "--type",
        "api",
        "--time-range",
        "2024-01-05:2024-01-01",
        api_url=server.url,
    )

    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[0] == "error: Invalid request"
    fields = {line.strip().split(":", 1)[0] for line in lines[1:]}
    assert {"symbol", "time_range"} <= fields
    assert_no_traceback(done)


def test_start_file_errors_are_one_line(server: Server, tmp_path: Path) -> None:
    missing = run_cli("start", "--file", str(tmp_path / "nope.json"), api_url=server.url)
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: cannot read")

    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    bad = run_cli("start", "--file", str(broken), api_url=server.url)
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: ") and "not valid JSON" in bad.stderr

    unknown = tmp_path / "unknown.json"
    unknown.write_text(
        json.dumps(
            {
                "symbol": "BTCUSDT",
                "type": "api",
                "time_range": "2024-01-01:2024-01-01",
                "colour": "red",
            }
        )
    )
    rejected = run_cli("start", "--file", str(unknown), api_url=server.url)
    assert rejected.returncode == 1
    assert "colour: unknown field" in rejected.stderr
    for done in (missing, bad, rejected):
        assert_no_traceback(done)


def test_start_needs_a_file_or_all_three_flags(server: Server) -> None:
    done = run_cli("start", "--symbol", "BTCUSDT", api_url=server.url)
    assert done.returncode == 2
    assert "--time-range" in done.stderr
    assert_no_traceback(done)


def test_events_follow_prints_the_history_until_the_queue_ends(server: Server) -> None:
    queue_id = start_queue(server)

    done = run_cli("events", queue_id, "--follow", "--json", api_url=server.url, timeout=90)

    assert done.returncode == 0, done.stdout + done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))  # each once, in order
    assert (events[0]["to"], events[0]["message"]) == ("pending", "created")
    assert (events[-1]["kind"], events[-1]["to"]) == ("queue.status", "finished")
    assert len(events) == queue_state(server, queue_id)["event_seq"]
    table = run_cli("events", queue_id, api_url=server.url)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert len(lines) == len(events)
    assert "queue.status" in lines[0] and "created" in lines[0] and "api:anonymous" in lines[0]
    assert "step 0" in lines[1] and "pending -> launching" in lines[1]
    assert_no_traceback(table)


def test_events_of_an_unknown_queue_exit_1(server: Server) -> None:
    done = run_cli("events", "no-such-queue", api_url=server.url)
    assert done.returncode == 1
    assert "no-such-queue" in done.stderr and "not found" in done.stderr.lower()
    assert_no_traceback(done)


def test_show_tells_a_retrying_step_and_its_attempts(server: Server) -> None:
    body = {
        "symbol": "BTCUSDT",
        "time_range": "2024-01-01:2024-01-03",
        "type": "api",
        "retry": {"limit": 1, "backoff": {"initial": 1, "jitter": 0}},
        "simulate": {"fail_after": 1, "http_status": 429, "retry_after": 120},
    }
    answer = httpx.post(f"{server.url}/queues/start", json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    queue_id = answer.json()["data"]["queue_id"]
    wait_for(
        lambda: queue_state(server, queue_id)["steps"][0]["status"] == "retrying",  # type: ignore[index]
        20,
    )

    done = run_cli("show", queue_id, api_url=server.url)

    assert done.returncode == 0, done.stderr
    assert "retrying until" in done.stdout
    assert "attempts" in done.stdout and "rate_limited" in done.stdout
    assert "simulated HTTP 429" in done.stdout
    httpx.post(f"{server.url}/queues/stop", params={"queue_id": queue_id, "force": "true"})


def test_token_create_with_auth_off_says_it_is_not_enforced(server: Server) -> None:
    """The service of these tests runs open (loopback, no AUTH_TOKENS_FILE): a token is stored
    and printed, and the CLI says in words that no request needs it (issue 32)."""
    done = run_cli("token", "create", "ci-unenforced", "--role", "operator", api_url=server.url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("qm_") and len(done.stdout.splitlines()) == 1
    warning, *_ = done.stderr.splitlines()
    assert warning == (
        f"warning: auth is disabled on {server.url}: the token is stored but not enforced, "
        "every request is let in without one until auth is configured (docs/security.md)"
    )
    assert "shown only now" in done.stderr
