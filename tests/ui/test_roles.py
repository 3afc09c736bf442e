"""Issue 12, test 5: with auth on, people sign in with a token; a viewer sees no mutating
control, and a request forged from the page's own origin is refused anyway."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from queue_manager.domain.identity import new_token, token_hash
from tests.support.service import Service
from tests.ui.conftest import WORKER_ARGS, Shots, open_dashboard

TOKENS = {role: new_token() for role in ("viewer", "operator", "admin")}

FORGE_STOP = """async ([queueId, withCsrf]) => {
  const me = await (await fetch('/auth/me')).json();
  const headers = withCsrf ? {'X-CSRF-Token': me.data.csrf_token} : {};
  const answer = await fetch('/queues/stop?queue_id=' + queueId, {method: 'POST', headers});
  return [answer.status, (await answer.json()).message];
}"""


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    home = tmp_path_factory.mktemp("ui-auth")
    lines = [f"ui-{role} {role} {token_hash(token)}" for role, token in TOKENS.items()]
    (home / "tokens").write_text("\n".join(lines) + "\n")
    env = {"AUTH_TOKENS_FILE": str(home / "tokens"), "LOCAL_WORKER_ARGS": WORKER_ARGS}
    svc = Service(home / "svc", env=env, token=TOKENS["admin"]).start()
    yield svc
    svc.stop()
    svc.kill_workers()


def _streaming(service: Service) -> str:
    day = datetime.now(UTC).date().isoformat()
    return service.start_queue({"symbol": "ETHUSDT", "type": "ws", "time_range": f"{day}:{day}"})


def _sign_in(page: Page, service: Service, role: str, route: str = "#/queues") -> None:
    open_dashboard(page, service, route)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("API token").fill(TOKENS[role])
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".who")).to_have_attribute("data-role", role)


def test_a_viewer_sees_no_mutating_control_and_a_forged_stop_is_refused(
    page: Page, secured: Service, shots: Shots
) -> None:
    queue_id = _streaming(secured)
    page.goto(secured.url + "/")  # the root redirects to the dashboard, which asks who you are
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("API token").fill("qm_" + "x" * 43)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#token-error")).not_to_be_empty()
    shots(page, "login-refused")

    _sign_in(page, secured, "viewer", f"#/queues/{queue_id}")
    # back where they were going, live over the session cookie
    expect(page.locator('.node[data-step="0"]')).to_have_attribute(
        "data-status", "loading", timeout=20_000
    )
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    for name in ("Stop", "Force stop", "Retry", "Resubmit"):
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name="Start")).to_be_hidden()
    shots(page, "viewer-detail")
    page.goto(secured.url + "/ui/#/start")  # no start form for a viewer either
    expect(page.get_by_role("heading", name="Queues")).to_be_visible()
    expect(page.get_by_role("link", name="Start a queue")).to_have_count(0)
    shots(page, "viewer-list")

    status, message = page.evaluate(FORGE_STOP, [queue_id, True])
    assert (status, message) == (403, "operator role required to stop a queue")
    assert secured.queue(queue_id)["status"] == "loading"


def test_an_operator_gets_the_controls_and_cookie_mutations_need_the_csrf_header(
    page: Page, secured: Service, shots: Shots
) -> None:
    queue_id = _streaming(secured)
    _sign_in(page, secured, "operator", f"#/queues/{queue_id}")
    expect(page.get_by_role("button", name="Stop", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Force stop")).to_be_visible()
    status, message = page.evaluate(FORGE_STOP, [queue_id, False])
    assert status == 403 and "X-CSRF-Token" in message
    assert secured.queue(queue_id)["status"] == "loading"
    page.get_by_role("button", name="Force stop").click()
    page.get_by_role("dialog").get_by_role("button", name="Force stop").click()
    expect(page.locator("#queue-status .badge")).to_have_text("stopped", timeout=20_000)
    stopped: dict[str, Any] = secured.queue(queue_id)
    assert stopped["stopped_by"] == "token:ui-operator"
    shots(page, "operator-stopped")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_a_viewer_reads_schedules_and_backfills_without_their_controls(
    page: Page, secured: Service, shots: Shots
) -> None:
    body = {"name": "viewer-sees", "cron": "15 0 * * *", "symbols": ["BTCUSDT"],
            "template": {"type": "api", "window": "1d"}}  # fmt: skip
    assert secured.post("/schedules", json=body).status_code == 201
    day = datetime.now(UTC).date().isoformat()
    started = secured.post("/queues/backfill", json={
        "symbols": ["ETHUSDT"], "type": "ws", "time_range": f"{day}:{day}", "chunk": "day",
        "max_parallel": 1})  # fmt: skip
    assert started.status_code == 200, started.text
    parent = started.json()["data"]["queue_id"]
    _sign_in(page, secured, "viewer", "#/schedules")
    row = page.locator('.srow[data-schedule="viewer-sees"]')
    expect(row.locator(".badge")).to_have_text("active")
    for name in ("Pause", "Resume", "Delete"):
        expect(page.get_by_role("button", name=name)).to_have_count(0)
    expect(page.get_by_role("link", name="New schedule")).to_have_count(0)
    shots(page, "viewer-schedules")
    page.goto(f"{secured.url}/ui/#/schedules/new")  # no form for a viewer: the list instead
    expect(page.get_by_role("heading", name="Schedules")).to_be_visible()
    page.goto(f"{secured.url}/ui/#/queues/{parent}")
    expect(page.locator('.crow[data-status="loading"]')).to_have_count(1, timeout=20_000)
    for name in ("Stop", "Force stop", "Retry failed children"):
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
    shots(page, "viewer-backfill")
    stopped = secured.post("/queues/stop", params={"queue_id": parent, "force": "true"})
    assert stopped.status_code == 200, stopped.text
