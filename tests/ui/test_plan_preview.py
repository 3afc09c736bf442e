"""Issue 32, acceptance 1: the start form draws the request's plan before it is sent — each
step, what it waits for and why — and shows an error inline, beside its step in the plan and
beside its line in the editor; a request with an error starts nothing."""

from __future__ import annotations

import json
from typing import Any

from playwright.sync_api import Page, expect

from tests.support.service import Service
from tests.ui.conftest import Shots, open_dashboard


def _queues(service: Service) -> int:
    return len(service.get("/queues", params={"limit": 1000}).json()["data"])


def _request(graph_input: str) -> dict[str, Any]:
    return {
        "symbol": "BTCUSDT",
        "time_range": "2024-06-01:2024-06-30",
        "requests": [
            {"target": "loader-producer", "type": "api_candles_5m"},
            {"target": "arango-connector", "type": "api_candles_5m"},
            {
                "target": "graph-builder",
                "type": "gnn_graph",
                "collection_inputs": [graph_input],
                "collection_output": "btc_graph_2024_06",
            },
        ],
    }


def test_the_plan_preview_shows_a_typo_inline_and_the_dependency_it_dropped(
    page: Page, service: Service, shots: Shots
) -> None:
    before = _queues(service)
    open_dashboard(page, service, "#/start")
    editor = page.locator("#body")
    text = json.dumps(_request("btc_candles_5m_2024_6"), indent=2)
    editor.fill(text)
    page.get_by_role("button", name="Preview plan").click()

    plan = page.locator("section.plan")
    expect(plan).to_be_visible()
    expect(plan.locator(".plan-status")).to_contain_text("1 error(s)")
    graph = plan.locator('.plan-step[data-step="2"]')
    expect(graph).to_have_class("plan-step has-error")
    expect(graph).to_contain_text("did you mean btc_candles_5m_2024_06?")
    # the typo dropped the dependency: the graph-builder would start first, with the loader
    expect(graph.locator(".plan-after")).to_have_text("starts first")
    first = plan.locator(".plan-wave").first.locator(".plan-step")
    expect(first).to_have_count(2)
    connector = plan.locator('.plan-step[data-step="1"]')
    expect(connector).to_contain_text(
        "starts together with step 0 (topic <queue_id>.api_candles_5m)"
    )
    expect(connector).to_contain_text("writes btc_candles_5m_2024_06")
    # and beside its line in the editor
    problem = page.locator('#body-errors li[data-field="requests.2.collection_inputs"]')
    expect(problem).to_contain_text("did you mean btc_candles_5m_2024_06?")
    line = next(i for i, row in enumerate(text.splitlines(), 1) if '"collection_inputs"' in row)
    assert problem.get_attribute("data-line") == str(line)
    shots(page, "plan-with-error")

    # Start previews first and sends nothing while the plan names an error
    page.get_by_role("button", name="Start", exact=True).click()
    expect(problem).to_be_visible()
    assert page.url.endswith("#/start")
    assert _queues(service) == before

    editor.fill(json.dumps(_request("btc_candles_5m_2024_06"), indent=2))
    expect(plan).to_be_hidden()  # an edit makes the drawn plan stale
    page.get_by_role("button", name="Preview plan").click()
    expect(plan.locator(".plan-status")).to_contain_text("3 step(s), no errors")
    expect(plan.locator('.plan-step[data-step="2"] .plan-after')).to_have_text(
        "starts once finished: step 1 (reads btc_candles_5m_2024_06)"
    )
    expect(plan.locator(".plan-wave")).to_have_count(3)
    expect(page.locator("#body-errors li")).to_have_count(0)
    shots(page, "plan-valid")
    assert _queues(service) == before
