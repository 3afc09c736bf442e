"""Admission from a terminal (docs/operations.md): `start --priority`, the waiting line in `list`,
the decision in `events` — against a `queue-manager serve` with MAX_RUNNING_QUEUES=1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cli.helpers import Server, run_cli, start_server
from tests.cli.test_cli_commands import SINGLE, queue_state, start_queue
from tests.support.service import wait_for


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(
        tmp_path_factory.mktemp("cli-admission"), MAX_RUNNING_QUEUES="1", QM_WORKER_DURATION="60"
    )
    try:
        yield srv
    finally:
        srv.terminate()
        srv.kill_workers()


def test_list_shows_the_waiting_line_and_events_the_admission(limited: Server) -> None:
    first = start_queue(limited)
    low = start_queue(limited)
    high = start_queue(limited, "--priority", "5")
    assert queue_state(limited, first)["status"] in ("pending", "loading")

    done = run_cli("list", "--status", "queued", api_url=limited.url)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if "queued" in line]
    # newest first, each with its place: the higher priority goes next
    assert [line.split()[0] for line in lines] == [high, low]
    assert "queued #1" in lines[0] and "queued #2" in lines[1]

    # The running one ends: its slot goes to the higher priority.
    assert run_cli("stop", first, "--force", api_url=limited.url).returncode == 0
    wait_for(lambda: queue_state(limited, high)["status"] != "queued" or None, timeout=30)
    assert queue_state(limited, low)["status"] == "queued"
    events = run_cli("events", high, api_url=limited.url)
    assert events.returncode == 0, events.stderr
    assert "admission" in events.stdout and "priority 5" in events.stdout

    for queue_id in (low, high):
        run_cli("stop", queue_id, "--force", api_url=limited.url)


def test_start_rejects_a_priority_out_of_range(limited: Server) -> None:
    done = run_cli("start", *SINGLE, "--priority", "5000", api_url=limited.url)
    assert done.returncode == 2 and "--priority" in done.stderr
