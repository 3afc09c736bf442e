"""Issue 28: the dashboard applies a live update in one place (`applyUpdate` in live.js), with one
list of ended statuses (format.js), and shows the queue's `started_at` / `finished_at` as the
updates carry them. Three views open on the same backfill while it runs — the queue list, the
backfill's page, one child's page — must end agreeing on each queue's ended state and duration,
the server's."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from playwright.sync_api import BrowserContext, Page, WebSocket, expect

from queue_manager.domain.models import QueueStatus
from tests.support.service import Service
from tests.ui.conftest import Shots, open_dashboard

#: three children, one at a time: the last one is still queued when the pages open
BACKFILL: dict[str, Any] = {
    "symbols": ["BTCUSDT"],
    "type": "api_candles_5m",
    "time_range": "2024-01-01:2024-03-31",
    "chunk": "month",
    "max_parallel": 1,
}
LAST_CHUNK = "2024-03-01:2024-03-31"


def span(seconds: float) -> str:
    """format.js `span`: how the dashboard writes a duration."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    if s < 86400:
        return f"{s // 3600}h {(s % 3600) // 60}m"
    return f"{s // 86400}d {(s % 86400) // 3600}h"


def millis(iso: str) -> int:
    """The instant as the browser's Date.parse has it: whole milliseconds."""
    at = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return int(at.timestamp()) * 1000 + at.microsecond // 1000


def duration_of(queue: dict[str, Any]) -> str:
    return span((millis(queue["finished_at"]) - millis(queue["started_at"])) / 1000)


def fact(page: Page, name: str) -> Any:
    return page.locator("dl.facts > div", has=page.locator("dt", has_text=name)).locator("dd")


def opened(context: BrowserContext, errors: list[str]) -> Page:
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page


def test_the_list_the_backfill_and_a_child_page_agree_once_updates_end_a_queue(
    page: Page, context: BrowserContext, service: Service, shots: Shots
) -> None:
    frames: list[str] = []

    def listen(socket: WebSocket) -> None:
        socket.on("framereceived", lambda payload: frames.append(str(payload)))

    page.on("websocket", listen)
    started = service.post("/queues/backfill", json=BACKFILL)
    assert started.status_code == 200, started.text
    parent = started.json()["data"]["queue_id"]
    children = service.get("/queues", params={"parent": parent, "limit": 10}).json()["data"]
    assert len(children) == 3
    child = next(c["id"] for c in children if c["time_range"] == LAST_CHUNK)

    errors: list[str] = []
    listing = open_dashboard(page, service, "#/queues")
    # a backfill's children are folded under their parent: unfold them
    listing.locator(f'.qrow[data-queue="{parent}"] .fold').click()
    backfill = open_dashboard(opened(context, errors), service, f"#/queues/{parent}")
    single = open_dashboard(opened(context, errors), service, f"#/queues/{child}")
    child_row = listing.locator(f'.qrow[data-queue="{child}"]')
    parent_row = listing.locator(f'.qrow[data-queue="{parent}"]')
    in_backfill = backfill.locator(f'.crow[data-queue="{child}"]')
    # the child has not ended yet, and every view says so
    expect(child_row).to_have_attribute("data-ended", "false")
    expect(in_backfill).to_have_attribute("data-ended", "false")
    expect(single.locator("#queue-status")).to_have_attribute("data-ended", "false")
    assert service.queue(child)["finished_at"] is None
    for view in (listing, backfill, single):
        expect(view.locator("#connection")).to_have_attribute("data-state", "live")

    service.wait_status(parent, {"finished"}, 90)
    ended_child, ended_parent = service.queue(child), service.queue(parent)
    took, took_all = duration_of(ended_child), duration_of(ended_parent)

    # the queue list: rows patched by updates only (it read the queues before they ended)
    for row, took_here in ((child_row, took), (parent_row, took_all)):
        expect(row).to_have_attribute("data-status", "finished", timeout=10_000)
        expect(row).to_have_attribute("data-ended", "true")
        expect(row.locator(".duration")).to_have_text(took_here)
    shots(listing, "list")
    # the backfill's page: its child's row, and its own head
    expect(in_backfill).to_have_attribute("data-ended", "true", timeout=10_000)
    expect(in_backfill.locator(".duration")).to_have_text(took)
    expect(backfill.locator("#queue-status")).to_have_attribute("data-ended", "true")
    expect(fact(backfill, "Duration")).to_have_text(took_all)
    shots(backfill, "backfill")
    # the child's own page
    expect(single.locator("#queue-status")).to_have_attribute("data-ended", "true", timeout=10_000)
    expect(single.locator("#queue-status .badge")).to_have_text("finished")
    expect(fact(single, "Duration")).to_have_text(took)
    expect(single.get_by_role("button", name="Resubmit")).to_be_visible()
    expect(single.get_by_role("button", name="Stop", exact=True)).to_have_count(0)
    shots(single, "child")

    # what the list's socket carried: every update has the queue's times, the child's last
    # one the same as GET /queues/{id}
    updates = [
        u
        for frame in frames
        for u in orjson.loads(frame)
        if u.get("event") in ("queue.updated", "step.updated")
    ]
    assert updates and all("started_at" in u and "finished_at" in u for u in updates)
    last = [u for u in updates if u["queue_id"] == child and u["event"] == "queue.updated"][-1]
    assert last["status"] == "finished"
    assert millis(last["started_at"]) == millis(ended_child["started_at"])
    assert millis(last["finished_at"]) == millis(ended_child["finished_at"])
    assert any(u["queue_id"] == child and u["finished_at"] is None for u in updates)

    # the one list of ended statuses is the server's
    listed = single.evaluate(
        "async () => [...(await import(new URL('format.js', document.baseURI).href)).ENDED_QUEUE]"
    )
    assert set(listed) == {s.value for s in QueueStatus if s.terminal}
    assert errors == [], f"uncaught errors in the pages: {errors}"
