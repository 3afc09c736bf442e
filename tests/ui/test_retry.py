"""Issue 12, test 4: a failed step shows its error on the page; Retry (confirmed) brings the
pipeline to finished. The step fails the way tests/e2e/test_retry_and_resubmit.py makes it fail:
its worker process is killed."""

from __future__ import annotations

import os
import signal
from typing import Any

from playwright.sync_api import Page, expect

from tests.support.service import Service
from tests.ui.conftest import Shots, node, open_dashboard


def test_a_failed_step_shows_its_error_and_retry_finishes_the_pipeline(
    page: Page, service: Service, shots: Shots, historical: dict[str, Any]
) -> None:
    queue_id = service.start_queue(historical)
    open_dashboard(page, service, f"#/queues/{queue_id}")
    builder = node(page, 4)
    expect(builder).to_have_attribute("data-status", "loading", timeout=30_000)
    job = service.queue(queue_id)["steps"][4]["job_name"]
    os.killpg(service.job_record(job)["pid"], signal.SIGKILL)

    expect(builder).to_have_attribute("data-status", "error", timeout=20_000)
    expect(node(page, 5)).to_have_attribute("data-status", "skipped")
    expect(builder.locator(".error-text")).not_to_be_empty()
    expect(page.locator("#queue-error")).to_contain_text("step 4 (graph-builder) failed")
    expect(page.locator("#queue-status .badge")).to_have_text("error")
    # the step panel opens on the failed step, with its error
    builder.click()
    expect(page.locator(".step-panel .alert")).to_contain_text(
        service.queue(queue_id)["steps"][4]["error_message"]
    )
    # and the history timeline has the failure, with its reason
    failure = page.locator('.timeline li[data-kind="step.status"]', has_text="graph-builder").last
    expect(failure).to_contain_text("error")
    expect(failure.locator(".message")).not_to_be_empty()
    shots(page, "failed")

    page.get_by_role("button", name="Retry").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Runs again steps #4, #5")
    expect(dialog).to_contain_text("Finished steps #0, #1, #2, #3 are kept")
    shots(page, "confirm-retry", full_page=False)
    dialog.get_by_role("button", name="Retry").click()

    expect(page.locator("#queue-status .badge")).to_have_text("finished", timeout=40_000)
    for index in range(6):
        expect(node(page, index)).to_have_attribute("data-status", "finished")
    expect(page.locator("#queue-error")).to_have_count(0)
    # its policy's count starts afresh; the run says it ran again (docs/dashboard.md)
    expect(builder.locator(".attempts")).to_have_text("attempt 1 of 1 · run 2")
    expect(page.locator('.timeline li[data-kind="command"]')).to_contain_text("retry")
    shots(page, "retried-finished")
    assert service.queue(queue_id)["retries"] == 1
