"""A worker's text on the page (issue 27): its error message and its log go into text nodes,
never parsed as HTML, with their control characters shown as escapes (`\\x1b`) rather than
hidden. The worker reports over HTTP as the local workers do (its token minted from
WORKER_TOKEN_SECRET)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from queue_manager.api.worker_auth import WorkerTokens
from tests.support.service import Service, wait_for
from tests.ui.conftest import WORKER_TOKEN_SECRET, Shots, node, open_dashboard

#: a terminal title, a cleared screen, a colour, a right-to-left override, a bell — and markup
EVIL = '\x1b]0;pwned\x07\x1b[2J\x1b[31mboom\u202eevil <img src=x onerror="window.__owned=1">'
SHOWN = '\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31mboom\\u202eevil <img src=x onerror="window.__owned=1">'


def test_a_workers_error_and_log_are_shown_as_text_with_control_characters_escaped(
    page: Page, service: Service, shots: Shots
) -> None:
    queue_id = service.start_queue(
        {"symbol": "BTCUSDT", "type": "ws", "time_range": "2024-01-01:2024-01-01"}
    )
    step = wait_for(
        lambda: (s := service.queue(queue_id)["steps"][0])["status"] == "loading" and s, 30
    )
    with open(service.data_dir / "jobs" / f"{step['job_name']}.log", "ab") as log:
        log.write(f"before\n{EVIL}\nafter\n".encode())
    token = WorkerTokens(WORKER_TOKEN_SECRET.encode()).token(step["telemetry_id"])
    answer = service.post(
        "/internal/telemetry",
        json={"event": "error", "queue_id": queue_id, "producer": step["telemetry_id"],
              "error_message": EVIL},
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    assert answer.status_code == 202, answer.text

    open_dashboard(page, service, f"#/queues/{queue_id}")
    expect(page.locator("#queue-status .badge")).to_have_text("error", timeout=20_000)
    expect(page.locator("#queue-error")).to_contain_text(SHOWN)
    expect(node(page, 0).locator(".error-text")).to_have_text(SHOWN)
    node(page, 0).click()
    expect(page.locator(".step-panel .alert")).to_have_text(SHOWN)
    expect(page.locator(".log")).to_contain_text(f"before\n{SHOWN}\nafter")
    shots(page, "escaped")

    shown = "#queue-error, .error-text, .step-panel .alert, .log"
    texts = page.evaluate(
        f"() => [...document.querySelectorAll('{shown}')].map(e => e.textContent).join('')"
    )
    assert "\x1b" not in texts and "\x07" not in texts and "\u202e" not in texts
    assert page.locator("img[src=x]").count() == 0
    assert page.evaluate("() => window.__owned") is None
