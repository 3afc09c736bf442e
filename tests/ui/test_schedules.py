"""Issue 13 in the dashboard: a schedule made in the form runs on its ticks and links its
queues; a backfill started from the dashboard shows its progress and children live, and stops
as a whole."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_backfill import BODY as BACKFILL
from tests.support.clocks import FAST_APP, FastClock
from tests.support.service import Service, wait_for
from tests.ui.conftest import WORKER_ARGS, Shots, open_dashboard

#: the service's clock (tests/support/clocks.py) runs one minute every two real seconds: a
#: tick comes while the test watches
SCALE = 30


@pytest.fixture(scope="module")
def fast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    clock = FastClock(SCALE, datetime.now(UTC).replace(microsecond=0))
    svc = Service(
        tmp_path_factory.mktemp("ui-schedules") / "svc",
        env={
            "STOP_GRACE_SECONDS": "2",
            "LOCAL_WORKER_ARGS": WORKER_ARGS,
            "SCHEDULE_POLL_SECONDS": "0.5",
            **clock.env(),
        },
        app=FAST_APP,
    ).start()
    yield svc
    svc.stop()
    svc.kill_workers()


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def _fill(page: Page, body: dict[str, Any]) -> str:
    text = json.dumps(body, indent=2)
    page.locator("#body").fill(text)
    return text


def test_a_schedule_made_in_the_form_runs_links_its_queues_and_pauses(
    page: Page, fast: Service, shots: Shots
) -> None:
    open_dashboard(page, fast, "#/schedules")
    expect(page.locator(".summary")).to_have_text("No schedules yet.")
    page.get_by_role("link", name="New schedule").click()
    expect(page.get_by_role("heading", name="New schedule")).to_be_visible()
    # the documented example is there to start from
    expect(page.locator("#body")).to_have_value(re.compile('"nightly-candles"'))
    body = {
        "name": "every-minute",
        "cron": "61 * * * *",
        "timezone": "Mars/Olympus",
        "symbols": ["BTCUSDT"],
        "template": {"type": "api", "window": "1d"},
        "concurrency_policy": "Allow",
    }
    text = _fill(page, body)
    page.get_by_role("button", name="Create schedule").click()
    cron = page.locator('#body-errors li[data-field="cron"]')
    expect(cron).to_contain_text("cron")
    assert cron.get_attribute("data-line") == str(_line_of(text, '"cron"'))
    zone = page.locator('#body-errors li[data-field="timezone"]')
    expect(zone).to_contain_text("IANA")
    assert zone.get_attribute("data-line") == str(_line_of(text, '"timezone"'))
    shots(page, "invalid-schedule")
    assert fast.get("/schedules").json()["data"] == []

    _fill(page, {**body, "cron": "* * * * *", "timezone": "UTC"})
    page.get_by_role("button", name="Create schedule").click()
    page.wait_for_url(re.compile(r".*#/schedules/every-minute$"))
    expect(page.get_by_role("heading", name="Schedule every-minute")).to_be_visible()
    expect(page.locator("#schedule-state .badge")).to_have_text("active")
    # a tick comes (every two seconds here) and its row links the queue it started
    started = page.locator('.srow.runs[data-outcome="started"] .links a').first
    expect(started).to_be_visible(timeout=20_000)
    shots(page, "schedule-with-runs")
    run_for = page.locator('.srow.runs[data-outcome="started"]').first.get_attribute(
        "data-scheduled-for"
    )
    started.click()
    expect(page.locator(".queue-head .origin")).to_contain_text("Run of schedule every-minute")
    queue_id = page.url.rsplit("/", 1)[-1]
    assert fast.queue(queue_id)["scheduled_for"] == run_for
    shots(page, "scheduled-queue")

    page.get_by_role("link", name="Schedules").click()
    row = page.locator('.srow[data-schedule="every-minute"]')
    expect(row.locator(".badge")).to_have_text("active")
    expect(row.locator(".cron")).to_contain_text("* * * * *")
    row.get_by_role("button", name="Pause").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Runs already started go on.")
    dialog.get_by_role("button", name="Pause").click()
    expect(row.locator(".badge")).to_have_text("paused")
    expect(row.locator(".next")).to_have_text("—")
    assert fast.get("/schedules/every-minute").json()["data"]["paused"] is True
    shots(page, "schedule-paused")

    # the list of queues says where each came from
    page.get_by_role("link", name="Queues", exact=True).click()
    origin = page.locator(f'.qrow[data-queue="{queue_id}"] .origin a')
    expect(origin).to_have_text("every-minute")

    page.goto(f"{fast.url}/ui/#/schedules/every-minute")
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    page.wait_for_url(re.compile(r".*#/schedules$"))
    expect(page.locator(".summary")).to_have_text("No schedules yet.")
    assert fast.get("/schedules/every-minute").status_code == 404


def test_a_backfill_shows_its_children_and_progress_live_then_stops_as_a_whole(
    page: Page, fast: Service, shots: Shots
) -> None:
    open_dashboard(page, fast, "#/start?kind=backfill")
    expect(page.get_by_role("heading", name="Start a backfill")).to_be_visible()
    _fill(page, {**BACKFILL, "chunk": "year"})
    page.get_by_role("button", name="Start backfill").click()
    chunk = page.locator('#body-errors li[data-field="chunk"]')
    expect(chunk).to_contain_text("Input should be 'day', 'week' or 'month'")
    _fill(page, BACKFILL)
    page.get_by_role("button", name="Start backfill").click()
    page.wait_for_url(re.compile(r".*#/queues/[0-9a-f-]{36}$"))
    parent = page.url.rsplit("/", 1)[-1]
    expect(page.get_by_role("heading", name=re.compile("^Backfill "))).to_be_visible()
    rows = page.locator(".crow:not(.head)")
    expect(rows).to_have_count(6)
    ranges = sorted(rows.locator(".range").all_inner_texts())
    assert ranges == sorted(
        ["2024-01-01:2024-01-31", "2024-02-01:2024-02-29", "2024-03-01:2024-03-31"] * 2
    )
    # a film of the progress bar: how many children were loading at each change it showed
    page.evaluate(
        """() => {
          window.__bars = [];
          const bar = document.querySelector('.progress');
          const snap = () => window.__bars.push(Object.fromEntries(
            [...bar.children].map(p => [p.dataset.status, Number(p.style.flexGrow)])));
          new MutationObserver(snap).observe(bar, {childList: true});
          snap();
        }"""
    )
    loading = page.locator('.crow[data-status="loading"]').first
    expect(loading).to_be_visible(timeout=20_000)
    shots(page, "backfill-running")
    expect(page.locator("#backfill-progress")).to_contain_text(
        "6 of 6 children finished", timeout=60_000
    )
    expect(page.locator("#queue-status .badge")).to_have_text("finished")
    expect(page.locator('.crow[data-status="finished"]')).to_have_count(6)
    bars: list[dict[str, int]] = page.evaluate("() => window.__bars")
    assert any(b.get("loading") for b in bars), bars
    assert max((b.get("loading", 0) + b.get("pending", 0)) for b in bars) <= 2, bars
    shots(page, "backfill-finished")

    page.get_by_role("link", name="Queues", exact=True).click()
    expect(page.locator(f'.qrow[data-queue="{parent}"] .steps')).to_have_text("backfill 6/6")
    expect(page.locator(f'.qrow[data-queue="{parent}"] .origin')).to_contain_text("backfill")
    page.locator(f'.qrow[data-queue="{parent}"] .fold').click()  # its children are folded
    part_of = page.locator(".qrow .origin a", has_text=f"part of {parent[:8]}")
    expect(part_of).to_have_count(6)
    shots(page, "list-with-backfill")

    # a second backfill, stopped from its page while its first children run
    started = fast.post("/queues/backfill", json={**BACKFILL, "max_parallel": 1})
    assert started.status_code == 200, started.text
    second = started.json()["data"]["queue_id"]
    page.goto(f"{fast.url}/ui/#/queues/{second}")
    expect(page.locator('.crow[data-status="loading"]')).to_have_count(1, timeout=20_000)
    page.get_by_role("button", name="Stop", exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name="Stop").click()
    expect(page.locator("#queue-status .badge")).to_have_text("stopped", timeout=30_000)
    expect(page.get_by_role("button", name="Retry failed children")).to_be_visible()
    shots(page, "backfill-stopped")
    children = fast.get("/queues", params={"parent": second, "limit": 100}).json()["data"]
    assert len(children) == 6
    assert {c["status"] for c in children} <= {"finished", "stopped"}, children
    assert wait_for(lambda: fast.queue(second)["status"] == "stopped" or None, 5)
