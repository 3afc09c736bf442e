"""Issue 32, the log panel (views/logs.js): lines read (time, level, message, fields), a level
filter and a search sent to the service, and a download of the raw log."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect

from tests.support.service import Service
from tests.ui.conftest import Shots, node, open_dashboard

#: the reference worker writes pages fetched and records published, then fails with an error line
FAILING: dict[str, Any] = {
    "symbol": "BTCUSDT",
    "type": "api",
    "time_range": "2024-01-01:2024-01-03",
    "simulate": {"fail_after": 3, "http_status": 400},
}


def test_log_lines_are_read_filtered_by_level_and_searched(
    page: Page, service: Service, shots: Shots
) -> None:
    queue_id = service.start_queue(FAILING)
    service.wait_status(queue_id, {"error"}, 30)
    open_dashboard(page, service, f"#/queues/{queue_id}")
    node(page, 0).click()
    lines = page.locator(".log .logline")
    expect(page.locator(".log-note")).to_contain_text("end of log", timeout=10_000)
    expect(lines.filter(has_text="page fetched")).to_have_count(3)
    fetched = lines.filter(has_text="page fetched").first
    expect(fetched.locator(".lvl")).to_have_text("info")
    expect(fetched.locator(".when")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d"))
    expect(fetched.locator(".field", has_text="page=1")).to_have_count(1)
    assert "{" not in (fetched.locator(".msg").text_content() or "")  # not a wall of JSON
    shots(page, "log-all")

    page.get_by_label("Level").select_option("error")
    expect(lines).to_have_count(1)
    expect(lines.first.locator(".lvl")).to_have_text("error")
    expect(lines.first).to_contain_text("simulated HTTP 400")
    shots(page, "log-errors")

    page.get_by_label("Level").select_option("")
    page.get_by_label("Search").fill("PUBLISHED")
    expect(lines).to_have_count(3)
    for text in lines.all_text_contents():
        assert "records published" in text
    shots(page, "log-search")

    # the download link is the raw log, sent as an attachment
    link = page.get_by_role("link", name="Download")
    href = link.get_attribute("href") or ""
    assert href.endswith(f"/queues/{queue_id}/steps/0/logs?download=true"), href
    assert link.get_attribute("download") is not None
    answer = service.get(href.removeprefix(service.url))
    assert answer.headers["content-disposition"] == (
        f'attachment; filename="{queue_id[:8]}-step0.log"'
    )
    assert answer.text == service.get(f"/queues/{queue_id}/steps/0/logs").text
