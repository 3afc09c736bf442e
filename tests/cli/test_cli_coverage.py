"""`queue-manager coverage` (a calendar strip, one coloured cell per day, with a legend, read
off a tmux pane) and `queue-manager fill --dry-run` (the plan), against the real service."""

from __future__ import annotations

import asyncio
import shlex
import subprocess
import uuid
from datetime import UTC, date, datetime

from queue_manager.adapters.sqlite_store import SQLiteStore
from queue_manager.domain.models import StepStatus
from tests.cli.helpers import CLI, Server, clean_env, run_cli
from tests.store.test_coverage_contract import TYPE, _end, _queue, _write
from tests.support.waiting import wait_until


async def _ledger(server: Server) -> None:
    """Jan 1-5 loaded, the loader of Jan 6-10 failed on Jan 8 at noon: written to the
    service's own file by another process, as a replica would."""
    store = SQLiteStore(server.data_dir / "queue-manager.db")
    await store.open()
    try:
        done = _queue(date(2024, 1, 1), date(2024, 1, 5), symbol="SOLUSDT")
        failed = _queue(date(2024, 1, 6), date(2024, 1, 10), symbol="SOLUSDT")
        for queue in (done, failed):
            await store.insert(queue, None)
        _end(done, 0, StepStatus.FINISHED)
        await _write(store, done)
        _end(
            failed, 0, StepStatus.ERROR, last_loaded_timestamp=datetime(2024, 1, 8, 12, tzinfo=UTC)
        )
        await _write(store, failed)
    finally:
        await store.close()


def _pane(session: str) -> str:
    capture = ["tmux", "capture-pane", "-e", "-p", "-t", session]
    return subprocess.run(capture, capture_output=True, text=True, check=True).stdout


def test_coverage_strip_and_fill_plan(server: Server) -> None:
    asyncio.run(_ledger(server))
    args = ["SOLUSDT", "--type", TYPE, "--from", "2024-01-01", "--to", "2024-01-12"]
    session = f"qm-coverage-{uuid.uuid4().hex[:8]}"
    env = clean_env(QM_API_URL=server.url, TERM="xterm-256color")
    command = " ".join(shlex.quote(part) for part in [*CLI, "coverage", *args])
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items() if k.isidentifier())
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "20",
         f"env -i {exports} {command}; sleep 30"],
        check=True,
    )  # fmt: skip
    try:

        def drawn() -> str | None:
            shown = _pane(session)
            return shown if "expected_gap" in shown else None

        text = wait_until(
            drawn,
            20,
            what="the coverage strip",
            detail=lambda: _pane(session),
        )
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    plain = subprocess.run(
        ["sed", "-e", r"s/\x1b\[[0-9;]*m//g"], input=text, capture_output=True, text=True
    ).stdout
    assert f"SOLUSDT {TYPE}" in plain
    strip = next(line for line in plain.splitlines() if line.startswith("2024-01-01 "))
    assert strip.count("█") == 12
    assert "7 complete, 1 partial, 2 failed, 2 missing" in plain
    # one colour per state, in day order: 7 green, 1 yellow, 2 red, 2 grey
    line = next(line for line in text.splitlines() if "2024-01-01" in line)
    colours = [part.split("m", 1)[0] for part in line.split("\x1b[")[1:] if "█" in part]
    assert colours[:4] == ["32", "33", "31", "90"] or colours[:4] == [
        "32",
        "33",
        "31",
        "38;5;244",
    ], repr(line)

    plan = run_cli("fill", *args, "--dry-run", api_url=server.url)
    assert plan.returncode == 0, plan.stderr
    lines = plan.stdout.splitlines()
    assert lines == [
        f"SOLUSDT  {TYPE}  2024-01-08:2024-01-12",
        "1 chunks to fill (dry run: nothing started)",
    ]
    bad = run_cli("fill", *args[:-1], "2099-01-01", "--dry-run", api_url=server.url)
    assert bad.returncode != 0 and "time_range" in bad.stderr
