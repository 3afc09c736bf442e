"""P12's dashboard figure: the coverage view's first render in Debian's Chromium (headless,
through Playwright's Python package), served by the real service on P12's ledger. From the
navigation's start to the grid drawn (`qm-coverage-drawn`, the view's own mark: the page's
scripts, the `GET /coverage` read and the drawing), for 100 symbols x 1 type x 366 days, each
load in a fresh page; baseline, beside it on the same service: the same view for one symbol."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.config import Config
from bench.p11_dashboard import CHROMIUM, signed_in_page, tokens_file
from bench.services import service
from bench.stats import median

LOADS = 5
DRAWN = """() => {
  const drawn = performance.getEntriesByName('qm-coverage-drawn')[0];
  const render = performance.getEntriesByName('qm-coverage-first-render')[0];
  return drawn && render ? [drawn.startTime, render.duration] : null;
}"""


def _route(symbols: list[str], type_: str, first: str, last: str) -> str:
    asked = "&".join(f"symbol={s}" for s in symbols)
    return f"#/coverage?{asked}&type={type_}&from={first}&to={last}"


def _load(browser: Any, url: str, token: str, route: str, shot: Path | None) -> tuple[float, float]:
    """(ms from navigation to the grid drawn, ms from the view's mount to it)."""
    with signed_in_page(browser, url, token) as (page, errors):
        page.goto(f"{url}/ui/{route}", wait_until="commit")
        handle = page.wait_for_function(DRAWN, timeout=60_000)
        navigation, mount = handle.json_value()
        assert not errors, f"uncaught errors in the page: {errors}"
        if shot is not None:
            page.screenshot(path=str(shot))
        return float(navigation), float(mount)


def first_render(
    cfg: Config, db: Path, symbols: list[str], type_: str, first: str, last: str
) -> tuple[float, float, str]:
    """Median ms navigation -> drawn for `symbols`, the same for the first symbol alone, and a
    note with every load."""
    from playwright.sync_api import sync_playwright

    path, token = tokens_file(cfg.workdir / "p12-auth")
    svc = service(cfg, "p12-served", kafka=False, SQLITE_PATH=str(db), AUTH_TOKENS_FILE=str(path))
    many, one = _route(symbols, type_, first, last), _route(symbols[:1], type_, first, last)
    big: list[tuple[float, float]] = []
    small: list[tuple[float, float]] = []
    with svc, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM)
        try:
            _load(browser, svc.url, token, many, None)  # warm-up: the service's first read
            for i in range(LOADS):
                shot = cfg.workdir / "p12-coverage.png" if i == 0 else None
                big.append(_load(browser, svc.url, token, many, shot))
                small.append(_load(browser, svc.url, token, one, None))
            version = browser.version
        finally:
            browser.close()
    note = (
        f"loads: {', '.join(f'{n:.0f}' for n, _ in big)} ms (mount to drawn: "
        f"{', '.join(f'{m:.0f}' for _, m in big)} ms); one symbol: "
        f"{', '.join(f'{n:.0f}' for n, _ in small)} ms; Chromium {version}."
    )
    return median([n for n, _ in big]), median([n for n, _ in small]), note
