"""P11 — the dashboard in a real browser: first render of the queue list, and main-thread long
tasks under live updates.

Debian's Chromium (/usr/bin/chromium, headless) through Playwright's Python package. (a) First
render: the service (embedded, auth on with a viewer token in AUTH_TOKENS_FILE) serves P3's
seeded SQLite file of 1,000,000 queues (quick: 100,000; bench/p3_list.py `cached_store`, reused
when P3 made it); each load is a fresh browser context (empty cache) signed in with
`POST /auth/login` (the session cookie the sign-in form gets), then navigates to
`/ui/#/queues`; a MutationObserver installed before the page's own scripts records
`performance.now()` (ms since navigation start) when the first `.qrow[data-queue]` row is in
the DOM. Median of 5 loads. Baseline: the same, alternating load by load, on a second service
whose store holds 100 queues. (b) Long tasks: the scenario of tests/ui/load.py (the old
`bench/ui_longtasks.py`): 1,900 ended + 100 running queues all listed (two pages of 1,000),
then 250 worker reports/s into the real Kafka broker for 10 s (quick: 5 s), which the page gets
as ~500 updates/s over its WebSocket; long tasks are main-thread tasks over 50 ms as Chromium
reports them to `PerformanceObserver('longtask')`, counted and summed over that window. No
baseline. A screenshot of the 1,000,000-queue list is saved as <run>/p11-list.png.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from tests.support.waiting import wait_until

from bench.config import Config
from bench.p3_list import cached_store
from bench.report import Row
from bench.seeding import seed_bulk, start_queues
from bench.services import service
from bench.stats import median

T = TypeVar("T")
CHROMIUM = "/usr/bin/chromium"
LOADS = 5
RATE = 250  # worker reports/s: ~500 updates/s on the socket
ROW = ".qrow[data-queue]"

#: installed before the page's scripts: when the first queue row enters the DOM
FIRST_ROW = """
window.__firstRow = null;
new MutationObserver((_, observer) => {
  if (document.querySelector('.qrow[data-queue]')) {
    window.__firstRow = performance.now();
    window.__rowsThen = document.querySelectorAll('.qrow[data-queue]').length;
    observer.disconnect();
  }
}).observe(document, {childList: true, subtree: true});
"""


def tokens_file(folder: Path) -> tuple[Path, str]:
    from queue_manager.domain.identity import new_token, token_hash

    token = new_token()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tokens"
    path.write_text(f"bench-viewer viewer {token_hash(token)}\n")
    return path, token


@contextlib.contextmanager
def signed_in_page(browser: Any, url: str, token: str) -> Iterator[tuple[Any, list[str]]]:
    """A fresh page of a context logged in with `token`, and the page's uncaught errors so
    far; the context is closed after."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        answer = context.request.post(f"{url}/auth/login", data={"token": token})
        assert answer.ok, f"login refused: {answer.status} {answer.text()}"
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page, errors
    finally:
        context.close()


def first_render(browser: Any, url: str, token: str, shot: Path | None = None) -> tuple[float, int]:
    """ms from navigation start to the first row in the DOM, and the rows there by then."""
    with signed_in_page(browser, url, token) as (page, errors):
        page.add_init_script(FIRST_ROW)
        page.goto(f"{url}/ui/#/queues", wait_until="commit")
        page.wait_for_function("() => window.__firstRow !== null", timeout=60_000)
        ms: float = page.evaluate("window.__firstRow")
        rows: int = page.evaluate("window.__rowsThen")
        assert not errors, f"uncaught errors in the page: {errors}"
        if shot is not None:
            page.locator(f'.queues[data-count="100"] {ROW}').first.wait_for()
            page.screenshot(path=str(shot))
        return ms, rows


def prepare(cfg: Config) -> tuple[int, Path, Path]:
    """The stores, seeded before Playwright runs (its sync API keeps an event loop here)."""
    count = cfg.size(1_000_000, 100_000)
    db, _ = cached_store(count)
    small = cfg.workdir / "p11-small" / "queue-manager.db"
    small.parent.mkdir(parents=True, exist_ok=True)
    seed_bulk(small, 100, procs=1)
    return count, db, small


def render_rows(cfg: Config, browser: Any, count: int, db: Path, small: Path) -> list[Row]:
    path, token = tokens_file(cfg.workdir / "p11-auth")
    auth = {"AUTH_TOKENS_FILE": str(path)}
    big_svc = service(cfg, "p11-big", kafka=False, SQLITE_PATH=str(db), **auth)
    small_svc = service(cfg, "p11-small", kafka=False, SQLITE_PATH=str(small), **auth)
    big: list[float] = []
    base: list[float] = []
    rows_then: list[int] = []
    with big_svc, small_svc:
        # The seed is written as a release without the coverage ledger would: the service
        # derives it in the background at start-up, once. Measured after that, as a store
        # lives from then on (the derivation's own time is P12's figure).
        wait_until(lambda: _derived(db) and _derived(small), 3600, what="the ledger derived")
        first_render(browser, big_svc.url, token)  # warm-up: the service's first page read
        first_render(browser, small_svc.url, token)
        for i in range(LOADS):
            ms, rows = first_render(browser, big_svc.url, token,
                                    cfg.workdir / "p11-list.png" if i == 0 else None)  # fmt: skip
            big.append(ms)
            rows_then.append(rows)
            base.append(first_render(browser, small_svc.url, token)[0])
    value, baseline = median(big), median(base)
    return [
        Row(f"P11 dashboard first render, {count:,} queues stored", value, "ms", baseline,
            "100 queues stored", "≤ 1 s", value is not None and value <= 1000,
            note=f"loads: {', '.join(f'{x:.0f}' for x in big)} ms (100 stored: "
            f"{', '.join(f'{x:.0f}' for x in base)} ms); rows in the DOM at that moment: "
            f"{', '.join(map(str, rows_then))}; Chromium {browser.version}."),
    ]


def _derived(db: Path) -> bool:
    import sqlite3

    try:
        with sqlite3.connect(db) as conn:
            return bool(
                conn.execute("SELECT 1 FROM coverage_meta WHERE key = 'derived'").fetchall()
            )
    except sqlite3.OperationalError:  # the table is made as the service opens the file
        return False


def longtask_rows(cfg: Config, browser: Any) -> list[Row]:
    from tests.ui import load

    seconds = cfg.size(10, 5)
    svc = service(cfg, "p11-updates", kafka=True, LAUNCH_GRACE_SECONDS="600",
                  RECONCILE_SECONDS="5")  # fmt: skip
    load.seed_ended(svc.data_dir / "queue-manager.db")
    try:
        with svc:
            ids = [s.queue_id for s in threaded(lambda: start_queues(svc.url, load.RUNNING))]
            jobs = svc.data_dir / "jobs"
            wait_until(lambda: len(list(jobs.glob("*.json"))) >= load.RUNNING, 60, every=0.2,
                       what=f"{load.RUNNING} local workers launched")  # fmt: skip
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            try:
                page = context.new_page()
                f = load.measure(page, svc, cfg.kafka(), ids, rate=RATE, seconds=seconds)
            finally:
                context.close()
    finally:
        svc.kill_workers()
    dropped = "yes" if f.socket_closed else "no"
    detail = (f"{f.rows:,} queues listed; {f.updates_received:,} updates in {f.seconds:.1f} s "
              f"({f.updates_per_second:,.0f}/s; socket dropped: {dropped}"
              f"); {f.frames_per_second:.0f} frames/s; longest task {f.longest_task_ms:.0f} ms; "
              f"main thread {f.busy_share:.1%} in long tasks. Loading the 2,000 rows "
              f"({f.load_ms / 1000:.1f} s from navigation): {f.load_long_tasks} long tasks, "
              f"{f.load_long_task_ms:,.0f} ms.")
    return [
        Row(f"P11 dashboard long tasks, ~{f.updates_per_second:,.0f} updates/s for "
            f"{f.seconds:.0f} s: total", f.long_task_ms, "ms", None, "", "—", None,
            note=f"{f.long_tasks} long tasks (count); " + detail),
    ]


def threaded(fn: Callable[[], T]) -> T:
    """Run `fn` (which may call asyncio.run) in a thread of its own, beside Playwright's loop."""
    out: list[T] = []
    runner = threading.Thread(target=lambda: out.append(fn()))
    runner.start()
    runner.join()
    if not out:
        raise RuntimeError("the call failed (see the thread's traceback above)")
    return out[0]


def run(cfg: Config) -> list[Row]:
    from playwright.sync_api import sync_playwright

    began = time.perf_counter()
    count, db, small = prepare(cfg)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM)
        try:
            rows = render_rows(cfg, browser, count, db, small)
            rows += longtask_rows(cfg, browser)
        finally:
            browser.close()
    print(f"   screenshot: {cfg.workdir / 'p11-list.png'} ({time.perf_counter() - began:.0f} s)")
    return rows
