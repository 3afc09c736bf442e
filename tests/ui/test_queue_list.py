"""Issue 32, the queue list: pipeline and time-range columns, a backfill's children folded under
their parent (expanded on demand), a created-at filter (a bad date named), and a bulk stop that
names every queue in its confirmation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.sync_api import Page, expect

from tests.support.service import Service
from tests.ui.conftest import Shots, open_dashboard

BACKFILL: dict[str, Any] = {
    "symbols": ["SOLUSDT"],
    "type": "api_candles_5m",
    "time_range": "2024-01-01:2024-01-03",
    "chunk": "day",
    "max_parallel": 1,
}
#: streaming: runs until stopped, so the bulk stop always finds it running
STREAM: dict[str, Any] = {"symbol": "BTCUSDT", "type": "ws", "time_range": "2024-06-01:2024-06-02"}
PIPELINE: dict[str, Any] = {
    "symbol": "ETHUSDT",
    "time_range": "2024-02-01:2024-02-05",
    "requests": [
        {"target": "loader-producer", "type": "ws_trades"},
        {"target": "arango-connector", "type": "ws_trades"},
    ],
}


def started(service: Service, path: str, body: dict[str, Any]) -> str:
    answer = service.post(path, json=body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["data"]["queue_id"])


def row(page: Page, queue_id: str) -> Any:
    return page.locator(f'.qrow[data-queue="{queue_id}"]')


def test_list_folds_children_shows_pipeline_and_range_and_stops_in_bulk(
    page: Page, service: Service, shots: Shots
) -> None:
    parent = started(service, "/queues/backfill", BACKFILL)
    stream = started(service, "/queues/start", STREAM)
    pipeline = started(service, "/queues/start", PIPELINE)
    children = [q["id"] for q in service.get("/queues", params={"parent": parent}).json()["data"]]
    assert len(children) == 3

    open_dashboard(page, service, "#/queues")
    expect(row(page, pipeline)).to_be_visible()
    # the new columns: what runs, and over which data
    expect(row(page, pipeline).locator(".pipeline")).to_have_text(
        "loader-producer → arango-connector"
    )
    expect(row(page, pipeline).locator(".range")).to_have_text("2024-02-01 → 2024-02-05")
    expect(row(page, stream).locator(".pipeline")).to_have_text("loader-producer")
    expect(row(page, stream).locator(".range")).to_have_text("2024-06-01 → 2024-06-02")
    # children folded: only the parent is listed, with how many it holds
    for child in children:
        expect(row(page, child)).to_have_count(0)
    fold = row(page, parent).locator(".fold")
    expect(fold).to_have_text("▸ 3 children")
    expect(row(page, parent).locator(".steps")).to_contain_text("backfill")
    shots(page, "list-folded")

    fold.click()
    expect(fold).to_have_attribute("aria-expanded", "true")
    expect(page.locator(".qrow.child")).to_have_count(3)
    # drawn right under their parent, oldest chunk first
    order = page.eval_on_selector_all(".qrow[data-queue]", "rows => rows.map(r => r.dataset.queue)")
    at = order.index(parent)
    shown = order[at + 1 : at + 4]
    assert sorted(shown) == sorted(children)
    ranges = [service.queue(c)["time_range"] for c in shown]
    assert ranges == sorted(ranges)
    expect(row(page, shown[0]).locator(".range")).to_have_text("2024-01-01 → 2024-01-01")
    shots(page, "list-expanded")
    fold.click()
    expect(page.locator(".qrow.child")).to_have_count(0)

    # bulk stop: the dialog names each queue before anything is sent
    row(page, stream).locator("input.select").check()
    row(page, pipeline).locator("input.select").check()
    expect(page.locator(".bulk .bulk-count")).to_have_text("2 selected")
    page.get_by_role("button", name="Stop selected").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Stop 2 queues?")
    expect(dialog).to_contain_text(f"{stream[:8]} · BTCUSDT · loader-producer")
    expect(dialog).to_contain_text(f"{pipeline[:8]} · ETHUSDT · loader-producer → arango-connector")
    shots(page, "bulk-stop-dialog")
    dialog.get_by_role("button", name="Stop").click()
    for queue_id in (stream, pipeline):
        service.wait_status(queue_id, {"stopping", "stopped"}, 20)
    expect(page.locator(".bulk .bulk-count")).to_have_text("none selected")
    assert service.queue(parent)["status"] not in {"stopping", "stopped"}

    # the created-at filter: a day after today holds nothing; a bad date names the field
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    open_dashboard(page, service, f"#/queues?from={tomorrow}")
    expect(page.locator(".summary")).to_have_text(f"No queue with created from {tomorrow}.")
    today = datetime.now(UTC).date().isoformat()
    open_dashboard(page, service, f"#/queues?from={today}&to={today}")
    expect(row(page, pipeline)).to_be_visible()
    expect(page.locator("#filter-from")).to_have_value(today)
    open_dashboard(page, service, "#/queues?from=2024-13-45")
    expect(page.locator("#filter-symbol-error")).to_contain_text("created_from")
    shots(page, "list-bad-date")
