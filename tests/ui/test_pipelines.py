"""Issue 12, tests 1 and 2: pipelines started from the form and watched on the DAG — what the
page shows, not what the API says."""

from __future__ import annotations

import os
import re

from playwright.sync_api import Page, WebSocketRoute, expect

from queue_manager.domain.models import Step
from queue_manager.domain.planner import edge
from tests.support.service import Service
from tests.ui.conftest import FILM, Shots, film, node, open_dashboard, queue_id_of, statuses

RUNNING = {"launching", "started", "loading"}


def _start_example(page: Page, service: Service, example: str) -> str:
    open_dashboard(page, service, "#/start")
    page.get_by_role("button", name=example).click()
    expect(page.locator("#body")).to_have_value(re.compile(r'"requests"'))
    page.get_by_role("button", name="Start", exact=True).click()
    return queue_id_of(page)


def _edges_follow_the_planner(page: Page, service: Service, queue_id: str) -> None:
    steps = [Step.model_validate(s) for s in service.queue(queue_id)["steps"]]
    drawn = page.evaluate(
        "() => [...document.querySelectorAll('path.edge')]"
        ".map(p => [Number(p.dataset.from), Number(p.dataset.to), p.dataset.kind])"
    )
    planned = [[d, s.index, edge(steps[d], s).value] for s in steps for d in s.depends_on]
    assert sorted(drawn) == sorted(planned)


def test_historical_pipeline_runs_in_data_order_on_the_page(
    page: Page, service: Service, shots: Shots
) -> None:
    open_dashboard(page, service, "#/start")
    page.get_by_role("button", name="Historical pipeline (batch)").click()
    shots(page, "start-form-historical")
    page.get_by_role("button", name="Start", exact=True).click()
    queue_id = queue_id_of(page)
    expect(page.locator(".node")).to_have_count(6)
    page.evaluate(FILM)
    _edges_follow_the_planner(page, service, queue_id)

    # loaders and connectors run together: a frame of the film shows all four running (read
    # from the film, since a fast worker may finish before a look at the page)
    page.wait_for_function(
        f"() => window.__film.some(f => [0, 1, 2, 3].every(i => {sorted(RUNNING)}.includes(f[i])))",
        timeout=20_000,
    )
    shots(page, "loaders-and-connectors-together")
    expect(node(page, 4)).not_to_have_attribute("data-status", "pending", timeout=30_000)
    shots(page, "graph-builder-after-connectors")
    if os.environ.get("UI_SCREENSHOT"):  # make ui-screenshot: the README's picture
        page.screenshot(path=os.environ["UI_SCREENSHOT"])
    expect(page.locator("#queue-status .badge")).to_have_text("finished", timeout=40_000)
    shots(page, "finished")

    frames = film(page)
    assert any(all(f[i] in RUNNING for i in range(4)) for f in frames), frames
    builder_ran = [f for f in frames if f[4] != "pending"]
    assert builder_ran, frames
    # the first frame showing graph-builder past pending shows both connectors finished
    assert builder_ran[0][2] == builder_ran[0][3] == "finished", builder_ran[0]
    trainer_ran = [f for f in frames if f[5] != "pending"]
    assert trainer_ran[0][4] == "finished", trainer_ran[0]
    assert set(statuses(page).values()) == {"finished"}
    # the history timeline tells the same story
    expect(page.locator('.timeline li[data-kind="queue.status"]').last).to_contain_text("finished")
    # and the queue list shows it done, steps and records included
    page.get_by_role("link", name="← Queues").click()
    row = page.locator(f'.qrow[data-queue="{queue_id}"]')
    expect(row.locator(".status")).to_have_text("finished")
    expect(row.locator(".steps")).to_have_text("6/6")
    records = service.queue(queue_id)["records_written"]
    expect(row.locator(".records")).to_have_text(f"{records:,}")
    shots(page, "list")


def test_realtime_pipeline_stops_from_the_page(page: Page, service: Service, shots: Shots) -> None:
    queue_id = _start_example(page, service, "Real-time pipeline (streaming)")
    expect(page.locator(".node")).to_have_count(7)
    _edges_follow_the_planner(page, service, queue_id)
    for index in range(7):
        expect(node(page, index)).to_have_attribute("data-status", "loading", timeout=20_000)
    shots(page, "streaming")
    page.get_by_role("button", name="Stop", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Sends the stop command")
    expect(dialog).to_contain_text("Every step ends stopped")
    shots(page, "confirm-stop", full_page=False)
    dialog.get_by_role("button", name="Stop").click()
    for index in range(7):
        expect(node(page, index)).to_have_attribute("data-status", "stopped", timeout=30_000)
    expect(page.locator("#queue-status .badge")).to_have_text("stopped")
    expect(page.get_by_role("button", name="Stop", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Retry")).to_be_visible()
    shots(page, "stopped")
    assert service.queue(queue_id)["status"] == "stopped"


def test_after_a_reconnect_the_page_re_reads_what_it_missed(
    page: Page, service: Service, shots: Shots, single: dict[str, object]
) -> None:
    sockets: list[WebSocketRoute] = []

    def first_deaf_then_live(socket: WebSocketRoute) -> None:
        server = socket.connect_to_server()
        if not sockets:  # the first socket hears nothing the service sends
            server.on_message(lambda _: None)
        sockets.append(socket)

    page.route_web_socket(re.compile(r".*/ws/topic.*"), first_deaf_then_live)
    queue_id = service.start_queue(single)
    open_dashboard(page, service, f"#/queues/{queue_id}")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    service.wait_status(queue_id, {"finished"}, 30)
    expect(node(page, 0)).not_to_have_attribute("data-status", "finished")  # stale, unaware
    shots(page, "stale-before-reconnect")
    sockets[0].close(code=1013, reason="client too slow")
    expect(page.locator("#queue-status .badge")).to_have_text("finished", timeout=15_000)
    expect(node(page, 0)).to_have_attribute("data-status", "finished")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    assert len(sockets) == 2
    shots(page, "re-read-after-reconnect")
