"""Issue 12, test 3: a bad start request shows each error beside the line of the field it names,
and nothing starts."""

from __future__ import annotations

import json

from playwright.sync_api import Page, expect

from queue_manager.api.examples import HISTORICAL
from tests.support.service import Service
from tests.ui.conftest import Shots, open_dashboard


def _queues(service: Service) -> int:
    return len(service.get("/queues", params={"limit": 1000}).json()["data"])


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_invalid_json_and_invalid_fields_are_shown_beside_their_lines(
    page: Page, service: Service, shots: Shots
) -> None:
    before = _queues(service)
    open_dashboard(page, service, "#/start")
    editor = page.locator("#body")
    start = page.get_by_role("button", name="Start", exact=True)

    broken = (
        '{\n  "symbol": "BTCUSDT",\n  "type": "api"\n  "time_range": "2024-01-01:2024-01-02"\n}'
    )
    editor.fill(broken)
    start.click()
    problem = page.locator('#body-errors li[data-field="JSON"]')
    expect(problem).to_have_attribute("data-line", "4")
    expect(problem).to_contain_text("JSON")
    expect(page.locator(".editor .gutter span.bad")).to_have_text("4")
    expect(page.locator(".editor .notes .note")).to_contain_text("JSON")
    shots(page, "invalid-json")

    body = {**HISTORICAL, "symbol": "b$"}
    body["requests"] = [dict(r) for r in HISTORICAL["requests"]]
    body["requests"][4]["colour"] = "blue"
    text = json.dumps(body, indent=2)
    editor.fill(text)
    start.click()
    symbol = page.locator('#body-errors li[data-field="symbol"]')
    expect(symbol).to_contain_text("must be 2 to 20 letters or digits")
    assert symbol.get_attribute("data-line") == str(_line_of(text, '"symbol"'))
    unknown = page.locator('#body-errors li[data-field="requests.4.colour"]')
    expect(unknown).to_contain_text("unknown field; allowed fields:")
    assert unknown.get_attribute("data-line") == str(_line_of(text, '"colour"'))
    # beside the line: each note in the editor's right-hand column sits at its line's height
    tops = page.locator(".editor .notes .note").evaluate_all("ns => ns.map(n => n.offsetTop)")
    assert tops == [(_line_of(text, name) - 1) * 20 for name in ('"symbol"', '"colour"')]
    shots(page, "invalid-fields")

    del body["requests"][4]["colour"], body["requests"][4]["collection_inputs"]
    body["symbol"] = "BTCUSDT"
    text = json.dumps(body, indent=2)
    editor.fill(text)
    start.click()
    missing = page.locator('#body-errors li[data-field="requests.4.collection_inputs"]')
    expect(missing).to_contain_text("graph-builder requires collection_inputs")
    # a missing field is shown beside the step that lacks it (the line opening its object)
    lines = text.splitlines()
    opening = int(missing.get_attribute("data-line") or 0)
    assert lines[opening - 1].strip() == "{" and '"graph-builder"' in lines[opening]
    expect(page.locator("#body-errors li")).to_have_count(1)
    shots(page, "missing-field")

    page.set_viewport_size({"width": 390, "height": 844})
    expect(missing).to_be_visible()
    shots(page, "missing-field-narrow")
    assert page.url.endswith("#/start")
    assert _queues(service) == before
