"""docs/pipelines.md "Retry" on the dashboard: a step whose reference worker got a 429 shows
`retrying` with a countdown to its retry_at and its attempts, then finishes on attempt 2 —
shown with the `simulate` step parameter, no process killed by hand."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.support.service import Service
from tests.ui.conftest import Shots, node, open_dashboard

BODY = {
    "symbol": "BTCUSDT",
    "time_range": "2024-01-01:2024-01-02",
    "type": "api",
    "retry": {"limit": 2, "backoff": {"initial": 1, "jitter": 0}},
    "simulate": {"fail_after": 1, "http_status": 429, "retry_after": 8},
}


def test_a_retrying_step_shows_its_countdown_and_attempts_then_finishes(
    page: Page, service: Service, shots: Shots
) -> None:
    queue_id = service.start_queue(BODY)
    open_dashboard(page, service, f"#/queues/{queue_id}")
    loader = node(page, 0)
    expect(loader).to_have_attribute("data-status", "retrying", timeout=20_000)
    expect(loader.locator(".badge")).to_have_text("retrying")
    panel = page.locator(".step-panel")
    countdown = panel.locator("p.retrying")
    expect(countdown).to_contain_text("attempt 2 in ")
    first = countdown.inner_text()
    expect(countdown).not_to_have_text(first, timeout=3_000)  # it counts down
    expect(panel.locator(".alert")).to_contain_text("simulated HTTP 429")
    row = panel.locator('table.attempts tr[data-attempt="1"]')
    expect(row).to_contain_text("rate_limited")
    expect(row).to_contain_text("Too Many Requests")
    expect(panel).to_contain_text("Retry policy")
    retrying = page.locator('.timeline li[data-kind="step.status"]', has_text="retrying").first
    expect(retrying).to_contain_text("rate_limited")
    shots(page, "retrying")

    expect(page.locator("#queue-status .badge")).to_have_text("finished", timeout=40_000)
    expect(loader).to_have_attribute("data-status", "finished")
    expect(panel.locator("p.retrying")).to_have_count(0)
    expect(panel.locator('table.attempts tr[data-attempt="2"]')).to_contain_text("—")
    expect(loader.locator(".attempts")).to_contain_text("attempt 2 of 3")
    shots(page, "retried-finished")
