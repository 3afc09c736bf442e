"""Issue 31: the catalog pages (#/collections, #/collections/<name>, docs/dashboard.md
"Collections") show what GET /collections answers — a pipeline run by real workers writes two
collections, the candles a connector wrote (read by graph-builder) and the graph built from
them; each page shows its producer, its inputs and its consumers as a lineage graph."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect

from tests.support.service import Service
from tests.ui.conftest import Shots, open_dashboard

CANDLES = "btc_candles_5m_2024_06"
GRAPH = "btc_graph_2024_06"
PIPELINE = {
    "symbol": "BTCUSDT",
    "time_range": "2024-06-01:2024-06-30",
    "requests": [
        {"target": "loader-producer", "type": "api_candles_5m"},
        {"target": "arango-connector", "type": "api_candles_5m"},
        {"target": "graph-builder", "type": "gnn_graph", "collection_inputs": [CANDLES],
         "collection_output": GRAPH},
    ],
}  # fmt: skip


def _info(service: Service, name: str) -> dict[str, Any]:
    answer = service.get(f"/collections/{name}")
    assert answer.status_code == 200, answer.text
    info: dict[str, Any] = answer.json()["data"]
    return info


def test_a_collection_page_shows_its_producer_inputs_and_consumers(
    page: Page, service: Service, shots: Shots
) -> None:
    queue_id = service.start_queue(PIPELINE)
    done = service.wait_status(queue_id, {"finished", "error", "stopped"}, 60)
    assert done["status"] == "finished", done
    candles, graph = _info(service, CANDLES), _info(service, GRAPH)
    assert candles["producer"]["target"] == "arango-connector"
    assert [c["target"] for c in candles["consumers"]] == ["graph-builder"]

    # The list, searched by prefix: both collections, each with its producer.
    open_dashboard(page, service, "#/collections")
    expect(page.locator('[data-nav="collections"]')).to_have_attribute("aria-current", "page")
    page.get_by_label("Name starts with").fill("btc_")
    expect(page).to_have_url(re.compile(r"#/collections\?prefix=btc_$"))  # the address follows
    rows = page.locator("table.collections tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator(f'tr[data-collection="{CANDLES}"]')).to_contain_text(
        "arango-connector · api_candles_5m"
    )
    expect(page.locator(f'tr[data-collection="{GRAPH}"]')).to_contain_text("graph-builder")
    page.get_by_label("Name starts with").fill("btc_graph")
    expect(rows).to_have_count(1)
    shots(page, "list")
    page.get_by_label("Name starts with").fill("eth_")
    expect(page.locator(".summary")).to_have_text("No collection starts with eth_.")

    # The candles: produced by the connector step, read by graph-builder.
    page.goto(f"{service.url}/ui/#/collections?prefix=btc_candles")
    page.get_by_role("link", name=CANDLES).click()
    expect(page.get_by_role("heading", name=CANDLES)).to_be_visible()
    producer = candles["producer"]
    facts = page.locator("dl.producer")
    expect(facts.locator(f'a[data-queue="{queue_id}"]')).to_have_attribute(
        "href", f"#/queues/{queue_id}"
    )
    expect(facts).to_contain_text(f"#{producer['step']} arango-connector")
    expect(facts).to_contain_text(f"{producer['records_written']:,}")
    lineage = page.locator("svg.lineage")
    expect(lineage.locator(".lnode.producer")).to_have_attribute("data-step", str(producer["step"]))
    expect(lineage.locator(".lnode.self")).to_have_attribute("data-collection", CANDLES)
    consumer = candles["consumers"][0]
    node = lineage.locator(".lnode.consumer")
    expect(node).to_have_count(1)
    expect(node).to_have_attribute("data-queue", consumer["queue_id"])
    expect(node).to_contain_text(f"#{consumer['step']} graph-builder")
    expect(lineage.locator(".lnode.input")).to_have_count(0)
    expect(lineage.locator(".lnode.none")).to_contain_text("no input")
    # an arrow into this collection and one out to its consumer
    expect(lineage.locator("path.ledge.writes")).to_have_count(1)
    expect(lineage.locator("path.ledge.read-by")).to_have_count(1)
    expect(
        page.locator(f'table.consumers tr[data-queue="{consumer["queue_id"]}"]')
    ).to_contain_text("graph-builder")
    shots(page, "candles")

    # The graph: its input is the candles, a link back to their page; nobody read it yet.
    page.goto(f"{service.url}/ui/#/collections/{GRAPH}")
    lineage = page.locator("svg.lineage")
    inputs = lineage.locator(".lnode.input")
    expect(inputs).to_have_count(len(graph["producer"]["inputs"]))
    expect(inputs).to_have_attribute("data-collection", CANDLES)
    expect(lineage.locator("path.ledge.reads")).to_have_count(1)
    expect(lineage.locator(".lnode.producer")).to_contain_text("graph-builder")
    expect(lineage.locator(".lnode.none")).to_contain_text("no consumer yet")
    shots(page, "graph")
    lineage.get_by_role("link", name=CANDLES).click()
    expect(page.get_by_role("heading", name=CANDLES)).to_be_visible()

    # A collection the catalog does not hold.
    page.goto(f"{service.url}/ui/#/collections/btc_candles_5m_2024_6")
    expect(page.get_by_role("alert")).to_contain_text("holds no collection btc_candles_5m_2024_6")
