"""#/overview (docs/dashboard.md "Overview"): runs over time by status, failure rates by target
and by symbol, what runs now — the page shows what GET /stats/overview answers."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.support.service import Service
from tests.ui.conftest import Shots, open_dashboard

DAY = "2024-01-01:2024-01-01"


def test_the_overview_charts_runs_and_failure_rates(
    page: Page, service: Service, shots: Shots
) -> None:
    fails = {"symbol": "ETHUSDT", "type": "api", "time_range": DAY,
             "simulate": {"fail_after": 1, "http_status": 400}}  # fmt: skip
    ended = [
        service.start_queue({"symbol": "BTCUSDT", "type": "api", "time_range": DAY}),
        service.start_queue(fails),
    ]
    for queue_id in ended:
        service.wait_status(queue_id, {"finished", "error"}, 60)
    running = service.start_queue({"symbol": "SOLUSDT", "type": "ws", "time_range": DAY})
    service.wait_status(running, {"loading"}, 30)
    data = service.get("/stats/overview", params={"window": "24h"}).json()["data"]
    assert data["by_symbol"][0]["key"] == "ETHUSDT"  # the worst first

    open_dashboard(page, service, "#/overview")
    expect(page.locator('[data-nav="overview"]')).to_have_attribute("aria-current", "page")
    chart = page.locator("svg.runs-chart")
    expect(chart.locator("rect.bar").first).to_be_visible()
    # every status of the window's runs is in the chart, as many as the API counts
    for status, n in data["totals"].items():
        drawn = chart.locator(f'rect[data-status="{status}"]')
        counted = sum(int(r.get_attribute("data-count") or 0) for r in drawn.all())
        assert counted == n, (status, counted, n)
        expect(page.locator(f'.legend.totals li[data-status="{status}"]')).to_contain_text(str(n))
    symbols = page.locator('table[aria-label="Failure rate by symbol"] tbody tr')
    expect(symbols.first).to_have_attribute("data-key", "ETHUSDT")
    expect(symbols.first).to_contain_text("100.0%")
    expect(page.locator('table[aria-label="Failure rate by target"]')).to_contain_text(
        "loader-producer"
    )
    expect(page.locator(".now-list").first).to_contain_text(running[:8])
    shots(page, "overview-24h")

    page.get_by_role("link", name="Last 7 days").click()
    expect(page.locator("#runs-title")).to_contain_text("6-hour buckets")
    expect(chart.locator("g")).to_have_count(28)
    shots(page, "overview-7d")
    service.post("/queues/stop", params={"queue_id": running, "force": "true"})
