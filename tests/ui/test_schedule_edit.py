"""Editing a schedule in the page (docs/dashboard.md "Schedules"): the form is filled with the
schedule as stored, a bad value is named beside its field and changes nothing, a good one is
saved with PATCH and shown."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.support.service import Service
from tests.ui.conftest import Shots, open_dashboard


def test_a_schedule_is_edited_in_the_page(page: Page, service: Service, shots: Shots) -> None:
    body = {
        "name": "edit-in-page",
        "cron": "15 0 * * *",
        "timezone": "UTC",
        "symbols": ["BTCUSDT"],
        "template": {"type": "api_candles_5m", "window": "1d"},
    }
    created = service.post("/schedules", json=body)
    assert created.status_code == 201, created.text
    open_dashboard(page, service, "#/schedules/edit-in-page")
    page.locator('[data-action="edit"]').click()
    form = page.locator("form.schedule-edit")
    expect(form.locator("#edit-cron")).to_have_value("15 0 * * *")
    expect(form.locator("#edit-symbols")).to_have_value("BTCUSDT")

    form.locator("#edit-cron").fill("every night")
    form.get_by_role("button", name="Save changes").click()
    expect(form.locator("#edit-cron-error")).to_contain_text("5 fields")
    assert service.get("/schedules/edit-in-page").json()["data"]["cron"] == "15 0 * * *"
    shots(page, "bad-cron")

    form.locator("#edit-cron").fill("30 2 * * 1-5")
    form.locator("#edit-symbols").fill("btcusdt, ETHUSDT")
    form.locator("#edit-catchup").select_option("all")
    form.get_by_role("button", name="Save changes").click()
    expect(form).to_have_count(0)
    cron = page.locator("dl.facts > div", has=page.locator("dt", has_text="Cron")).locator("dd")
    expect(cron).to_have_text("30 2 * * 1-5 (UTC)")
    expect(page.locator("dl.facts")).to_contain_text("BTCUSDT, ETHUSDT")
    expect(page.locator(".notice")).to_contain_text("Schedule changed: cron, symbols, catchup")
    # the notice sits in the header, above the page, never over it
    inside, notice_bottom, main_top = page.evaluate(
        """() => [Boolean(document.querySelector('header.top .notice')),
                  document.querySelector('.notice').getBoundingClientRect().bottom,
                  document.querySelector('main').getBoundingClientRect().top]"""
    )
    assert inside and notice_bottom <= main_top
    stored = service.get("/schedules/edit-in-page").json()["data"]
    assert (stored["cron"], stored["symbols"], stored["catchup"]) == (
        "30 2 * * 1-5", ["BTCUSDT", "ETHUSDT"], "all",
    )  # fmt: skip
    assert stored["template"] == body["template"]  # not sent, not changed
    shots(page, "saved")
