"""Issue 31, acceptance 5: the coverage view (#/coverage, docs/dashboard.md "Coverage") in
Chromium with 20 symbols x 366 days of ledger — the colours of the grid are the states
GET /coverage answers, hovering a cell tells its day, state, records and producer, a click opens
that queue, and "Fill gaps" over a selection shows POST /coverage/fill's dry-run plan before it
starts the backfill. A viewer sees the grid without the Fill control.

The ledger is made the fastest real way: 12 monthly queues per symbol (finished, failed halfway,
stopped, or none), written through SQLiteStore before the service starts — the store writes
their cells in the same transaction, as it does for the service — plus an expected gap put over
the API. The fill's children run an idle worker, so their days stay `running`.
"""

from __future__ import annotations

import calendar
import random
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from queue_manager.adapters.sqlite_store import SQLiteStore
from queue_manager.domain.identity import new_token, token_hash
from queue_manager.domain.models import (
    LoaderType,
    QueueState,
    QueueStatus,
    Step,
    StepStatus,
    Target,
)
from tests.support.service import Service, wait_for
from tests.ui.conftest import Shots, open_dashboard
from tests.ui.load import IDLE_WORKER, in_thread

TYPE = "api_candles_5m"
YEAR = 2024  # a leap year: 366 days
SYMBOLS = [f"{base}USDT" for base in (
    "BTC", "ETH", "SOL", "BNB", "XRP", "ADA", "DOGE", "AVAX", "DOT", "LINK",
    "MATIC", "LTC", "TRX", "ATOM", "NEAR", "UNI", "APT", "ARB", "OP", "FIL",
)]  # fmt: skip
TOKENS = {role: new_token() for role in ("viewer", "operator", "admin")}
ROUTE = (
    "#/coverage?"
    + "&".join(f"symbol={s}" for s in SYMBOLS)
    + (f"&type={TYPE}&from={YEAR}-01-01&to={YEAR}-12-31")
)
GAP = {"symbol": "*", "from": f"{YEAR}-07-04", "to": f"{YEAR}-07-05", "reason": "maintenance"}

#: the colour of each pixel asked, read from the grid's canvas; and the legend's swatches
PIXELS = """(points) => {
  const c = document.querySelector('canvas.cov-grid');
  const r = window.devicePixelRatio || 1;
  const g = c.getContext('2d');
  return points.map(([x, y]) => Array.from(g.getImageData(Math.floor(x * r), Math.floor(y * r), 1, 1).data.slice(0, 3)));
}"""  # noqa: E501
SWATCHES = """() => Object.fromEntries([...document.querySelectorAll('.cov-legend li')].map(
  li => [li.dataset.state, getComputedStyle(li.querySelector('.swatch-box')).backgroundColor]))"""
GEOMETRY = """() => ({...document.querySelector('canvas.cov-grid').dataset})"""
RENDER = """() => ['qm-coverage-first-render', 'qm-coverage-draw'].map(
  n => performance.getEntriesByName(n)[0].duration)"""


def _month_queue(symbol: str, month: int, kind: int, created: datetime) -> QueueState:
    """A one-loader queue over one month of YEAR, ended as `kind` says: 1 failed halfway
    (complete, partial, failed days), 2 stopped before loading anything, else finished."""
    qid = str(uuid.uuid4())
    first = date(YEAR, month, 1)
    last = date(YEAR, month, calendar.monthrange(YEAR, month)[1])
    step = Step(index=0, target=Target.LOADER, type=TYPE,
                job_name=f"qm-{qid[:8]}-0-loader-producer", telemetry_id=f"{qid}-0")  # fmt: skip
    queue = QueueState(
        id=qid, symbol=symbol, type=TYPE, status=QueueStatus.FINISHED, loader_type=LoaderType.JOB,
        time_range=f"{first}:{last}",
        start_time=datetime.combine(first, time.min, UTC),
        end_time=datetime.combine(last, time.max, UTC).replace(microsecond=0),
        created_at=created, updated_at=created, steps=[step],
    )  # fmt: skip
    days = last.day
    if kind == 1:
        reached = datetime(YEAR, month, 5 + month % 20, 12, tzinfo=UTC)
        step.status, queue.status = StepStatus.ERROR, QueueStatus.ERROR
        step.last_loaded_timestamp = reached
        step.records_written = (reached.day - 1) * 288 + 144
    elif kind == 2:
        step.status, queue.status = StepStatus.STOPPED, QueueStatus.STOPPED
    else:
        step.status = StepStatus.FINISHED
        step.records_written = days * 288
    queue.records_written = step.records_written
    return queue


def _seed(db: Any) -> None:
    async def insert() -> None:
        store = SQLiteStore(db)
        await store.open()
        t0 = datetime(YEAR + 1, 1, 2, tzinfo=UTC)
        try:
            for i, symbol in enumerate(SYMBOLS):
                for month in range(1, 13):
                    kind = (i * 7 + month * 3) % 10
                    if kind == 0:
                        continue  # no queue: the month stays missing
                    created = t0 + timedelta(minutes=i * 12 + month)
                    await store.insert(_month_queue(symbol, month, kind, created), None)
        finally:
            await store.close()

    db.parent.mkdir(parents=True, exist_ok=True)
    in_thread(insert)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    home = tmp_path_factory.mktemp("ui-coverage")
    _seed(home / "svc" / "queue-manager.db")
    lines = [f"ui-{role} {role} {token_hash(token)}" for role, token in TOKENS.items()]
    (home / "tokens").write_text("\n".join(lines) + "\n")
    env = {
        "AUTH_TOKENS_FILE": str(home / "tokens"),
        "LOCAL_WORKER_COMMAND": IDLE_WORKER,  # a fill's children stay running
        "LAUNCH_GRACE_SECONDS": "600",
    }
    svc = Service(home / "svc", env=env, token=TOKENS["admin"]).start()
    put = httpx.put(f"{svc.url}/coverage/expected-gaps/ui-maintenance", json=GAP,
                    headers={"Authorization": f"Bearer {TOKENS['admin']}"}, timeout=10)  # fmt: skip
    assert put.status_code == 201, put.text
    yield svc
    svc.stop()
    svc.kill_workers()


def _sign_in(page: Page, service: Service, role: str, route: str) -> None:
    open_dashboard(page, service, route)
    page.get_by_label("API token").fill(TOKENS[role])
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".who")).to_have_attribute("data-role", role)


def _days(service: Service, symbols: list[str]) -> dict[tuple[str, date], dict[str, Any]]:
    """GET /coverage as one run per (symbol, day)."""
    params = {"symbol": symbols, "type": TYPE, "from": f"{YEAR}-01-01", "to": f"{YEAR}-12-31"}
    answer = service.get("/coverage", params=params)
    assert answer.status_code == 200, answer.text
    found: dict[tuple[str, date], dict[str, Any]] = {}
    for row in answer.json()["data"]["rows"]:
        for run in row["runs"]:
            day = date.fromisoformat(run["from"])
            while day <= date.fromisoformat(run["to"]):
                found[(row["symbol"], day)] = run
                day += timedelta(days=1)
    return found


def _drawn(page: Page, at_least: int = 1) -> dict[str, str]:
    grid = page.locator("canvas.cov-grid")
    expect(grid).to_have_attribute("data-drawn", re.compile(r"\d+"), timeout=15_000)
    page.wait_for_function(
        f"() => Number(document.querySelector('canvas.cov-grid').dataset.drawn) >= {at_least}"
    )
    geometry: dict[str, str] = page.evaluate(GEOMETRY)
    return geometry


def _point(geometry: dict[str, str], symbol: str, day: date) -> tuple[float, float]:
    """The centre of a cell, in the canvas's CSS pixels."""
    row = geometry["rows"].split(",").index(symbol)
    column = (day - date.fromisoformat(geometry["viewFrom"])).days
    x = float(geometry["left"]) + (column + 0.5) * float(geometry["cell"])
    y = float(geometry["top"]) + row * float(geometry["row"]) + float(geometry["rowHeight"]) / 2
    return x, y


def _rgb(css: str) -> tuple[int, ...]:
    return tuple(int(v) for v in re.findall(r"\d+", css)[:3])


def _check_colours(
    page: Page, cells: list[tuple[str, date]], days: dict[tuple[str, date], dict[str, Any]]
) -> dict[str, int]:
    """Every cell's pixel is its API state's legend colour; answers the states seen."""
    geometry = page.evaluate(GEOMETRY)
    swatches = {state: _rgb(css) for state, css in page.evaluate(SWATCHES).items()}
    assert len(set(swatches.values())) == 6, swatches  # one colour per state
    pixels = page.evaluate(PIXELS, [_point(geometry, s, d) for s, d in cells])
    seen: dict[str, int] = {}
    for (symbol, day), pixel in zip(cells, pixels, strict=True):
        state = days[(symbol, day)]["state"]
        assert tuple(pixel) == swatches[state], (symbol, day, state, pixel, swatches)
        seen[state] = seen.get(state, 0) + 1
    return seen


def test_the_grid_shows_the_ledger_and_fills_a_selection(
    page: Page, ledger: Service, shots: Shots
) -> None:
    _sign_in(page, ledger, "operator", ROUTE)
    geometry = _drawn(page)
    first_render, draw = page.evaluate(RENDER)
    print(f"\ncoverage view, 20 symbols x 366 days: first render {first_render:.0f} ms "
          f"(mount -> drawn, API read included), drawing {draw:.1f} ms")  # fmt: skip
    assert geometry["rows"].split(",") == SYMBOLS
    assert (geometry["viewFrom"], geometry["viewTo"]) == (f"{YEAR}-01-01", f"{YEAR}-12-31")
    expect(page.locator('[data-nav="coverage"]')).to_have_attribute("aria-current", "page")
    shots(page, "year")

    # Colours: a sample of cells, and every state's first and last cell, as the API says.
    days = _days(ledger, SYMBOLS)
    assert len(days) == 20 * 366
    by_state: dict[str, list[tuple[str, date]]] = {}
    for key, run in days.items():
        by_state.setdefault(run["state"], []).append(key)
    assert set(by_state) == {"complete", "partial", "failed", "missing", "expected_gap"}
    cells = random.Random(31).sample(sorted(days), 150)
    cells += [key for keys in by_state.values() for key in (keys[0], keys[-1])]
    seen = _check_colours(page, cells, days)
    assert set(seen) == set(by_state), seen
    # the legend counts the days of each state; the table under the grid, per symbol
    for state, keys in by_state.items():
        expect(page.locator(f'.cov-legend li[data-state="{state}"]')).to_contain_text(
            f"{len(keys):,}"
        )
    eth_failed = sum(1 for (s, _), r in days.items() if s == "ETHUSDT" and r["state"] == "failed")
    expect(page.locator('tr[data-symbol="ETHUSDT"] td[data-state="failed"]')).to_have_text(
        f"{eth_failed:,}"
    )

    # Hover: the day, its state, loaded_until, the run's records and the producing queue.
    symbol, day = by_state["partial"][0]
    run = days[(symbol, day)]
    box = page.locator("canvas.cov-grid").bounding_box()
    assert box is not None
    x, y = _point(geometry, symbol, day)
    page.mouse.move(box["x"] + x, box["y"] + y)
    tip = page.locator(".cov-tip")
    expect(tip).to_be_visible()
    expect(tip).to_have_attribute("data-state", "partial")
    expect(tip).to_contain_text(f"{symbol} · {day.isoformat()}")
    expect(tip).to_contain_text("loaded until " + run["loaded_until"][:10])
    expect(tip).to_contain_text(f"{run['records']:,} records")
    expect(tip).to_contain_text(f"queue {run['queue_id'][:8]}")
    shots(page, "hover-partial", full_page=False)  # docs/coverage.png

    # Click: the producing queue's page.
    symbol, day = by_state["complete"][len(by_state["complete"]) // 2]
    x, y = _point(geometry, symbol, day)
    page.mouse.click(box["x"] + x, box["y"] + y)
    page.wait_for_url(f"**/#/queues/{days[(symbol, day)]['queue_id']}")
    page.go_back()
    geometry = _drawn(page)

    # Zoom to a month: a month's days across the width, colours still the API's.
    page.get_by_label("Zoom").select_option("month")
    page.wait_for_function(
        "() => document.querySelector('canvas.cov-grid').dataset.viewTo === '2024-01-31'"
    )
    page.get_by_role("button", name="Later ▶").click()
    page.wait_for_function(
        "() => document.querySelector('canvas.cov-grid').dataset.viewFrom === '2024-01-16'"
    )
    window = [date(YEAR, 1, 16) + timedelta(days=n) for n in range(31)]
    _check_colours(page, [(s, d) for s in SYMBOLS[:6] for d in window], days)
    shots(page, "month")
    page.get_by_label("Zoom").select_option("all")
    page.wait_for_function(
        "() => document.querySelector('canvas.cov-grid').dataset.viewTo === '2024-12-31'"
    )
    geometry = page.evaluate(GEOMETRY)

    # Select two symbols over March and April by dragging, then fill: the dialog shows the plan.
    picked = [SYMBOLS[3], SYMBOLS[4]]
    start = _point(geometry, picked[0], date(YEAR, 3, 1))
    end = _point(geometry, picked[1], date(YEAR, 4, 30))
    page.mouse.move(box["x"] + start[0], box["y"] + start[1])
    page.mouse.down()
    page.mouse.move(box["x"] + end[0], box["y"] + end[1], steps=8)
    page.mouse.up()
    selection = page.locator(".cov-selection")
    expect(selection).to_have_attribute("data-symbols", ",".join(picked))
    expect(selection).to_have_attribute("data-from", f"{YEAR}-03-01")
    expect(selection).to_have_attribute("data-to", f"{YEAR}-04-30")
    body = {"symbols": picked, "types": [TYPE], "time_range": f"{YEAR}-03-01:{YEAR}-04-30",
            "chunk": "month", "max_parallel": 2, "dry_run": True}  # fmt: skip
    plan = ledger.post("/coverage/fill", json=body).json()["data"]["chunks"]
    assert plan, "the seed leaves gaps in March and April of these two symbols"
    page.get_by_role("button", name="Fill gaps").click()
    dialog = page.locator("dialog.confirm")
    expect(dialog).to_be_visible()
    expect(dialog.locator("h2")).to_have_text(
        f"Fill gaps: {len(plan)} chunk{'s' * (len(plan) > 1)}"
    )
    rows = dialog.locator("tbody tr")
    expect(rows).to_have_count(len(plan))
    shown = [(r.get_attribute("data-symbol"), r.get_attribute("data-range")) for r in rows.all()]
    assert shown == [(c["symbol"], c["time_range"]) for c in plan]
    shots(page, "fill-plan")
    dialog.get_by_role("button", name=re.compile(r"^Start \d+ chunk")).click()

    # The backfill starts, the page links it, and the filled days now show running.
    link = page.locator(".cov-started a")
    expect(link).to_be_visible(timeout=15_000)
    parent = link.get_attribute("data-queue")
    assert parent is not None
    assert link.get_attribute("href") == f"#/queues/{parent}"
    children = wait_for(lambda: ledger.get("/queues", params={"parent": parent}).json()["data"], 10)
    assert sorted((c["symbol"], c["time_range"]) for c in children) == sorted(
        (c["symbol"], c["time_range"]) for c in plan
    )
    geometry = _drawn(page, 2)  # re-read after the fill
    days = _days(ledger, SYMBOLS)
    filled = [(c["symbol"], date.fromisoformat(c["time_range"][:10])) for c in plan]
    assert {days[key]["state"] for key in filled} == {"running"}
    assert _check_colours(page, filled, days) == {"running": len(filled)}
    shots(page, "filled")
    stopped = ledger.post("/queues/stop", params={"queue_id": parent, "force": "true"})
    assert stopped.status_code == 200, stopped.text
    # the next test reads the same ledger: wait until no filled day is running any more
    ledger.wait_status(parent, {"stopped", "error", "finished"}, 30)
    wait_for(lambda: all(r["state"] != "running" for r in _days(ledger, picked).values()), 30)


def test_a_viewer_reads_the_grid_without_the_fill_control(
    page: Page, ledger: Service, shots: Shots
) -> None:
    _sign_in(page, ledger, "viewer", ROUTE)
    geometry = _drawn(page)
    days = _days(ledger, SYMBOLS)
    _check_colours(page, random.Random(7).sample(sorted(days), 40), days)
    expect(page.locator(".cov-legend li")).to_have_count(6)
    expect(page.locator(".cov-selection")).to_contain_text("All shown: 20 symbols")
    expect(page.get_by_role("button", name="Fill gaps")).to_have_count(0)
    # hovering still tells the producer
    symbol, day = SYMBOLS[0], date(YEAR, 7, 4)
    box = page.locator("canvas.cov-grid").bounding_box()
    assert box is not None
    x, y = _point(geometry, symbol, day)
    page.mouse.move(box["x"] + x, box["y"] + y)
    expect(page.locator(".cov-tip")).to_have_attribute("data-state", days[(symbol, day)]["state"])
    shots(page, "viewer")
