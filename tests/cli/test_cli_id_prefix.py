"""A queue id's first six characters or more stand for the id in every CLI verb (issue 32).

The service makes random UUIDs, so queues that share a prefix are stored before it starts: three
finished queues, two of them sharing `abcdef12`, all three sharing `abcdef`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from queue_manager.adapters.sqlite_store import SQLiteStore
from queue_manager.domain import planner
from queue_manager.domain.models import QueueStatus, StepStatus
from queue_manager.domain.requests import QueueCreate
from tests.cli.helpers import Server, run_cli, start_server

TWINS = ("abcdef12-0000-4000-8000-000000000001", "abcdef12-0000-4000-8000-000000000002")
SINGLE = "abcdef34-0000-4000-8000-000000000003"
BODY = {"symbol": "BTCUSDT", "type": "api", "time_range": "2024-01-01:2024-01-03"}


def seed(db: Path) -> None:
    async def insert() -> None:
        store = SQLiteStore(db)
        await store.open()
        at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        try:
            for n, queue_id in enumerate((*TWINS, SINGLE)):
                queue = planner.plan(QueueCreate.model_validate(BODY), queue_id)
                queue.created_at = queue.updated_at = at + dt.timedelta(seconds=n)
                queue.status = QueueStatus.FINISHED
                for step in queue.steps:
                    step.status = StepStatus.FINISHED
                await store.insert(queue, None)
        finally:
            await store.close()

    db.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(insert())


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("cli-prefix")
    seed(root / "data" / "queue-manager.db")
    server = start_server(root)
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.terminate()
        server.kill_workers()


def test_a_unique_prefix_names_the_queue_in_every_verb(seeded: Server) -> None:
    shown = run_cli("show", "abcdef34", "--json", api_url=seeded.url)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["id"] == SINGLE

    table = run_cli("show", "abcdef3", api_url=seeded.url)
    assert table.returncode == 0, table.stderr
    assert "finished" in table.stdout

    # stored without history: an empty one, where an unknown id would be a 404
    events = run_cli("events", "abcdef34", "--json", api_url=seeded.url)
    assert events.returncode == 0, events.stderr

    watched = run_cli("watch", "abcdef34", "--plain", api_url=seeded.url, timeout=30)
    assert watched.returncode == 0, watched.stderr

    # the service answers for the full id: a finished queue cannot be stopped or retried
    for verb in ("stop", "retry"):
        done = run_cli(verb, "abcdef34", api_url=seeded.url)
        assert done.returncode == 1
        assert SINGLE in done.stderr, done.stderr
        assert "ambiguous" not in done.stderr and "Traceback" not in done.stderr


def test_an_ambiguous_prefix_lists_the_candidates(seeded: Server) -> None:
    done = run_cli("show", "abcdef12", api_url=seeded.url)
    assert done.returncode == 1
    first, *candidates = done.stderr.splitlines()
    assert first == (
        "error: queue id 'abcdef12' is ambiguous: 2 queues start with it; give more characters"
    )
    assert [line.split()[0] for line in candidates] == [TWINS[1], TWINS[0]]  # newest first
    assert all("finished" in line and "BTCUSDT" in line for line in candidates)

    for verb in ("stop", "retry", "events", "watch"):
        done = run_cli(verb, "abcdef", api_url=seeded.url)
        assert done.returncode == 1, (verb, done.stderr)
        assert "3 queues start with it" in done.stderr, (verb, done.stderr)
        assert SINGLE in done.stderr and TWINS[0] in done.stderr
    logs = run_cli("logs", "abcdef", "0", api_url=seeded.url)
    assert logs.returncode == 1 and "ambiguous" in logs.stderr


def test_a_short_or_unknown_prefix_is_refused_in_words(seeded: Server) -> None:
    short = run_cli("show", "abcde", api_url=seeded.url)
    assert short.returncode == 2
    assert short.stderr.startswith(
        "error: queue id 'abcde' is too short: give the full id or its first 6 characters or more"
    )
    unknown = run_cli("show", "fedcba98", api_url=seeded.url)
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("error: Queue fedcba98 not found")
