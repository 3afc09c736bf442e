"""The dashboard in real headless Chromium (Debian's `chromium`, `make ui-deps`) through
Playwright, against the real service with real worker processes (tests/support/service.py).

One browser for the whole tier; one service per test module; a fresh browser context (cookies,
storage) per test. Every uncaught error in the page fails the test. Screenshots of each step land
in .cache/ui-artifacts/<test>/.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.support.service import Service

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / ".cache" / "ui-artifacts"
#: what a worker job runs in the UI tests: short, so a batch pipeline ends in seconds
WORKER_ARGS = "--duration 2"
WORKER_TOKEN_SECRET = "ui-tests-worker-token-secret"


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make ui-deps` installs Debian's chromium package")
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = Service(
        tmp_path_factory.mktemp("ui") / "svc",
        env={"STOP_GRACE_SECONDS": "3", "LOCAL_WORKER_ARGS": WORKER_ARGS,
             "WORKER_TOKEN_SECRET": WORKER_TOKEN_SECRET},
    ).start()  # fmt: skip
    yield svc
    svc.stop()
    svc.kill_workers()


@dataclass
class Shots:
    """Numbered screenshots of one test's steps."""

    folder: Path
    taken: list[Path] = field(default_factory=list)

    def __call__(self, page: Page, name: str, *, full_page: bool = True) -> Path:
        path = self.folder / f"{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        self.taken.append(path)
        return path


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return Shots(folder)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    assert errors == [], f"uncaught errors in the page: {errors}"


def open_dashboard(page: Page, service: Service, route: str = "#/queues") -> Page:
    """Load the dashboard at a route and wait until it has booted (who am I, first view)."""
    page.goto(f"{service.url}/ui/{route}")
    page.locator("body[data-ready=true]").wait_for()
    return page


def node(page: Page, index: int) -> Any:
    return page.locator(f'.node[data-step="{index}"]')


def statuses(page: Page) -> dict[int, str]:
    found: dict[str, str] = page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('.node')]"
        ".map(n => [n.dataset.step, n.dataset.status]))"
    )
    return {int(k): v for k, v in found.items()}


#: records every status change of the DAG's nodes as the page shows it, with the whole graph's
#: statuses at that moment: a film of the page, read after the fact
FILM = """() => {
  window.__film = [];
  const snap = () => window.__film.push(Object.fromEntries(
    [...document.querySelectorAll('.node')].map(n => [n.dataset.step, n.dataset.status])));
  new MutationObserver(snap).observe(document.querySelector('.dag'),
    {attributes: true, subtree: true, attributeFilter: ['data-status']});
  snap();
}"""


def film(page: Page) -> list[dict[int, str]]:
    frames: list[dict[str, str]] = page.evaluate("() => window.__film")
    return [{int(k): v for k, v in frame.items()} for frame in frames]


def queue_id_of(page: Page) -> str:
    """The queue the page shows (#/queues/<id>)."""
    page.wait_for_url(re.compile(r".*#/queues/[0-9a-f-]{36}$"))
    return page.url.rsplit("/", 1)[-1]
