"""The queue page (docs/dashboard.md "A queue"): the timeline of steps and attempts, a step's
parameters, inputs and outputs, retry from a chosen step (what re-runs, then the new run), a
streaming step shown as activity, and the page at 420 px: no horizontal overflow, no node
label cut. Real service, real reference workers, real Chromium."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Browser, Page, expect

from tests.support.service import Service
from tests.ui.conftest import Shots, node, open_dashboard

DAY = "2024-01-01:2024-01-01"
COLLECTION = "btc_candles_1m_2024_01_01"  # the connector's, as the planner names it
#: loader -> connector (together, through the topic) -> graph builder (batch, the collection),
#: whose first attempt fails on purpose (`simulate`, docs/pipelines.md)
FAILING: dict[str, Any] = {
    "symbol": "BTCUSDT",
    "time_range": DAY,
    "requests": [
        {"target": "loader-producer", "type": "api_candles_1m"},
        {"target": "arango-connector", "type": "api_candles_1m"},
        {
            "target": "graph-builder",
            "type": "gnn_graph",
            "collection_inputs": [COLLECTION],
            "collection_output": "btc_graph_2024_01_01",
            "simulate": {"fail_after": 1, "http_status": 400},
        },
    ],
}


def _step_panel(page: Page) -> Any:
    return page.locator(".step-panel")


def test_timeline_inputs_outputs_and_retry_from_a_chosen_step(
    page: Page, service: Service, shots: Shots
) -> None:
    queue_id = service.start_queue(FAILING)
    service.wait_status(queue_id, {"error"}, 60)
    queue = service.queue(queue_id)
    assert [s["status"] for s in queue["steps"]] == ["finished", "finished", "error"]
    open_dashboard(page, service, f"#/queues/{queue_id}")
    # records_written is what the loader wrote, each record once (docs/api.md "Records and
    # duration"): the connector's copy and the builder's count are not added to it
    loaded = queue["steps"][0]["records_written"]
    assert loaded > 0 and queue["records_written"] == loaded
    assert queue["steps"][1]["records_written"] > 0 and queue["steps"][2]["records_written"] > 0
    records = page.locator("dl.facts > div", has=page.locator("dt", has_text="Records loaded"))
    expect(records.locator("dd")).to_have_text(f"{loaded:,}")

    # The timeline: a row per step, one bar per attempt, coloured and worded by its outcome.
    gantt = page.locator(".gantt")
    expect(gantt.locator(".gantt-row")).to_have_count(3)
    for step in queue["steps"]:
        row = gantt.locator(f'.gantt-row[data-step="{step["index"]}"]')
        expect(row.locator(".gantt-bar")).to_have_count(len(step["attempts_log"]))
    failed = gantt.locator('.gantt-row[data-step="2"] .gantt-bar').first
    expect(failed).to_have_attribute("data-kind", "failed")
    expect(failed).to_have_attribute("aria-label", _contains("error: "))
    expect(gantt.locator('.gantt-row[data-step="0"] .gantt-bar')).to_have_attribute(
        "data-kind", "finished"
    )
    shots(page, "timeline")

    # The graph builder's inputs and outputs: the collection the connector wrote, linked to it.
    panel = _step_panel(page)
    expect(panel.locator("#step-title")).to_contain_text("Step #2")  # the failed one
    inputs = panel.locator('ul[aria-label="Inputs"] li')
    expect(inputs).to_have_count(1)
    expect(inputs.first).to_have_attribute("data-name", COLLECTION)
    expect(inputs.first).to_contain_text("from #1 arango-connector")
    expect(panel.locator('ul[aria-label="Outputs"] li')).to_have_attribute(
        "data-name", "btc_graph_2024_01_01"
    )
    expect(panel.locator("dl.params")).to_contain_text("collection_inputs")
    expect(panel).to_contain_text("attempt 1 of 1 (no retry policy)")
    ran = page.locator("dl.facts > div", has=page.locator("dt", has_text="Ran for")).locator("dd")
    expect(ran).not_to_have_text("—")
    # The connector reads the loader's topic and writes the collection.
    inputs.first.get_by_role("button").click()
    expect(panel.locator("#step-title")).to_contain_text("Step #1")
    topic = queue["steps"][1]["kafka_topic"]
    expect(panel.locator('ul[aria-label="Inputs"] li')).to_have_attribute("data-name", topic)
    expect(panel.locator('ul[aria-label="Inputs"] li')).to_contain_text("from #0 loader-producer")
    expect(panel.locator('ul[aria-label="Outputs"] li')).to_contain_text("read by #2 graph-builder")
    shots(page, "inputs-outputs")

    # Retry from the connector: the dialog names what re-runs (it and what reads it) and what
    # is kept (the loader).
    panel.locator('[data-action="retry-from"]').click()
    dialog = page.locator("dialog.confirm")
    expect(dialog).to_contain_text("Re-run from step #1?")
    expect(dialog).to_contain_text("#1 arango-connector, #2 graph-builder")
    expect(dialog).to_contain_text("Finished steps #0 are kept")
    shots(page, "retry-dialog")
    dialog.get_by_role("button", name="Retry").click()

    # The new run: the connector and the builder run again and finish; the loader did not.
    expect(page.locator("#queue-status .badge")).to_have_text("finished", timeout=60_000)
    expect(gantt.locator('.gantt-row[data-step="1"] .gantt-bar')).to_have_count(2)
    expect(gantt.locator('.gantt-row[data-step="2"] .gantt-bar')).to_have_count(2)
    expect(gantt.locator('.gantt-row[data-step="0"] .gantt-bar')).to_have_count(1)
    after = service.queue(queue_id)
    assert [len(s["attempts_log"]) for s in after["steps"]] == [1, 2, 2]
    history = page.locator('.timeline li[data-kind="command"]').last
    expect(history).to_contain_text("from step 1: steps 1, 2 run again")
    shots(page, "retried")


def _contains(text: str) -> re.Pattern[str]:
    """Playwright takes a regex for a partial attribute match."""
    return re.compile(re.escape(text))


def test_a_streaming_step_shows_activity_not_a_filled_bar(
    page: Page, service: Service, shots: Shots
) -> None:
    queue_id = service.start_queue({"symbol": "ETHUSDT", "type": "ws", "time_range": DAY})
    open_dashboard(page, service, f"#/queues/{queue_id}")
    loader = node(page, 0)
    expect(loader).to_have_attribute("data-status", "loading", timeout=20_000)
    expect(loader.locator(".meter")).to_have_count(0)
    activity = loader.locator(".activity")
    expect(activity).to_contain_text("rec/s · last report")
    # A running step shows when it started, not "—".
    started = page.locator("dl.facts > div", has=page.locator("dt", has_text="Started"))
    expect(started.locator("dd")).not_to_have_text("—")
    shots(page, "streaming")
    service.post("/queues/stop", params={"queue_id": queue_id, "force": "true"})


def test_the_queue_page_at_420_px_has_no_overflow_and_no_cut_label(
    browser: Browser, service: Service, shots: Shots
) -> None:
    from queue_manager.api.examples import HISTORICAL

    queue_id = service.start_queue(HISTORICAL)
    context = browser.new_context(viewport={"width": 420, "height": 860})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        open_dashboard(page, service, f"#/queues/{queue_id}")
        expect(page.locator(".node")).to_have_count(6)
        expect(page.locator(".gantt-row")).to_have_count(6)
        expect(page.locator(".dag")).to_have_attribute("data-orientation", "vertical")
        overflow = page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
        assert overflow <= 0, f"{overflow}px of horizontal overflow at 420 px"
        cut = page.evaluate(
            """() => [...document.querySelectorAll('.node')].flatMap((n) =>
                 [n, ...n.querySelectorAll(':scope > span')]
                   .filter((e) => e.scrollWidth > e.clientWidth + 1
                               || (e === n && e.scrollHeight > e.clientHeight + 1))
                   .map((e) => `${n.dataset.step}: ${e.className || 'node'} "${e.textContent}"`))"""
        )
        assert cut == [], f"node text cut: {cut}"
        ellipsised = page.evaluate(
            """() => [...document.querySelectorAll('.node *')]
                 .filter((e) => getComputedStyle(e).textOverflow === 'ellipsis').length"""
        )
        assert ellipsised == 0
        shots(page, "narrow")
        assert errors == []
    finally:
        context.close()
