// #/coverage?symbol=BTCUSDT&symbol=ETHUSDT&type=api_candles_5m&from=2024-01-01&to=2024-12-31:
// the coverage ledger (GET /coverage, docs/coverage.md) as a grid — symbols as rows, days as
// columns, one colour per state — drawn on one canvas from the API's runs (a run is one
// rectangle, never one node per day). Hover a cell for its day, state, records and producer;
// click it to open that queue; drag over cells to select days (and symbols), then "Fill gaps"
// (operators) shows POST /coverage/fill's dry-run plan before it starts the backfill.

import { ApiError, get, post } from "../api.js";
import { confirmAction, notify } from "../dialog.js";
import { count, el } from "../format.js";

export const STATES = ["complete", "partial", "failed", "running", "missing", "expected_gap"];
const LABEL = { expected_gap: "expected gap" };
const label = (state) => LABEL[state] || state;
const DAY_MS = 86400000;
const DEFAULT_TYPE = "api_candles_5m";
/** Grid geometry in CSS pixels: the symbol column, the day axis, one row. */
const LEFT = 96;
const TOP = 30;
const ROW = 18;
const GAP = 3;
/** Zoom levels: days shown across the width (null: the whole range). */
const ZOOMS = [["all", "Whole range", null], ["year", "Year", 366], ["quarter", "Quarter", 92], ["month", "Month", 31]];
/** Symbols asked of the summary when none are named (the ledger's own, at most). */
const MAX_LISTED = 200;
const PLAN_SHOWN = 60;

const dayOf = (iso) => Math.floor(Date.parse(`${iso.slice(0, 10)}T00:00:00Z`) / DAY_MS);
const isoOf = (day) => new Date(day * DAY_MS).toISOString().slice(0, 10);
const today = () => Math.floor(Date.now() / DAY_MS);
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** The API's rows as arrays per row: starts, ends (day numbers) and the runs, for drawing and
 * for a binary search under the pointer. */
function index(rows) {
  return rows.map((row) => {
    const starts = new Int32Array(row.runs.length);
    const ends = new Int32Array(row.runs.length);
    row.runs.forEach((run, i) => {
      starts[i] = dayOf(run.from);
      ends[i] = dayOf(run.to);
    });
    return { symbol: row.symbol, type: row.type, runs: row.runs, starts, ends };
  });
}

function runAt(row, day) {
  let lo = 0;
  let hi = row.starts.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (row.starts[mid] > day) hi = mid - 1;
    else if (row.ends[mid] < day) lo = mid + 1;
    else return row.runs[mid];
  }
  return null;
}

/** Days per state over [first, last] of each row (the table under the grid: the same numbers
 * in words, never colour alone). */
function tally(row, first, last) {
  const days = Object.fromEntries(STATES.map((s) => [s, 0]));
  row.runs.forEach((run, i) => {
    const a = Math.max(row.starts[i], first);
    const b = Math.min(row.ends[i], last);
    if (b >= a) days[run.state] += b - a + 1;
  });
  return days;
}

class CoverageView {
  constructor(container, ctx) {
    performance.clearMarks("qm-coverage-mount");
    performance.mark("qm-coverage-mount");
    this.ctx = ctx;
    this.canFill = ctx.session.can("operator");
    const p = ctx.params;
    this.symbols = p.getAll("symbol").flatMap((s) => s.split(/[\s,]+/)).map((s) => s.trim().toUpperCase()).filter(Boolean);
    this.type = p.get("type") || DEFAULT_TYPE;
    const lastDefault = today();
    this.last = p.get("to") ? dayOf(p.get("to")) : lastDefault;
    this.first = p.get("from") ? dayOf(p.get("from")) : this.last - 365;
    if (!(this.first <= this.last)) this.first = this.last;
    this.zoom = ZOOMS.some(([z]) => z === p.get("zoom")) ? p.get("zoom") : "all";
    this.viewFirst = this.first;
    this.rows = [];
    this.selection = null; // {r0, r1, d0, d1}
    this.hover = null;

    this.summary = el("p", { class: "summary", "aria-live": "polite" }, "reading…");
    this.canvas = el("canvas", { class: "cov-grid", tabindex: "0", role: "img", "aria-label": "Coverage grid: symbols by day, coloured by state (the table below has the same counts)" });
    this.overlay = el("canvas", { class: "cov-overlay", "aria-hidden": "true" });
    this.tip = el("div", { class: "cov-tip", role: "status", hidden: true });
    this.wrap = el("div", { class: "cov-wrap" }, this.canvas, this.overlay, this.tip);
    this.table = el("div", { class: "cov-table" });
    this.fillArea = el("div", { class: "cov-fill" });
    this.started = el("p", { class: "cov-started", "aria-live": "polite" });
    container.append(
      el("h1", {}, "Coverage"),
      this.form(),
      this.toolbar(),
      this.summary,
      this.wrap,
      this.legendList = el("ul", { class: "legend cov-legend", "aria-label": "States" }),
      this.fillArea,
      this.started,
      this.table,
      el("p", { class: "help" }, "One cell per symbol and UTC day, coloured by what reached the store (docs/coverage.md). "
        + "Hover a cell for its day, state, records and the queue that produced it; click it to open that queue; drag across cells to select days and symbols."),
    );
    this.resize = () => this.draw();
    window.addEventListener("resize", this.resize);
    this.bindPointer();
    this.load();
  }

  form() {
    const f = el("form", { class: "filters cov-form", "aria-label": "What to show" });
    const input = (name, labelText, attrs) => el("label", {}, `${labelText} `, el("input", { name, ...attrs }));
    f.append(
      input("symbols", "Symbols", { type: "text", value: this.symbols.join(", "), placeholder: "all in the ledger", size: 28 }),
      input("type", "Type", { type: "text", value: this.type, required: true, size: 16 }),
      input("from", "From", { type: "date", value: isoOf(this.first), required: true }),
      input("to", "To", { type: "date", value: isoOf(this.last), required: true }),
      el("button", { type: "submit", class: "button" }, "Show"),
    );
    f.addEventListener("submit", (event) => {
      event.preventDefault();
      const data = new FormData(f);
      const q = new URLSearchParams();
      for (const s of String(data.get("symbols")).split(/[\s,]+/).filter(Boolean)) q.append("symbol", s.toUpperCase());
      q.set("type", String(data.get("type")).trim());
      q.set("from", String(data.get("from")));
      q.set("to", String(data.get("to")));
      if (this.zoom !== "all") q.set("zoom", this.zoom);
      this.ctx.navigate(`#/coverage?${q}`);
    });
    return f;
  }

  toolbar() {
    const zoom = el("select", { name: "zoom", "aria-label": "Zoom" },
      ZOOMS.map(([z, text]) => el("option", { value: z, selected: z === this.zoom }, text)));
    zoom.addEventListener("change", () => {
      this.zoom = zoom.value;
      this.viewFirst = this.selection ? Math.min(this.selection.d0, this.selection.d1) : this.viewFirst;
      this.draw();
    });
    const pan = (direction) => () => {
      const span = this.viewSpan();
      this.viewFirst += direction * Math.max(1, Math.floor(span / 2));
      this.draw();
    };
    this.earlier = el("button", { type: "button", class: "button small", onclick: pan(-1) }, "◀ Earlier");
    this.later = el("button", { type: "button", class: "button small", onclick: pan(1) }, "Later ▶");
    this.zoomSelect = zoom;
    return el("div", { class: "filters cov-toolbar" }, el("label", {}, "Zoom ", zoom), this.earlier, this.later);
  }

  viewSpan() {
    const days = this.last - this.first + 1;
    const zoom = ZOOMS.find(([z]) => z === this.zoom)[2];
    return zoom ? Math.min(zoom, days) : days;
  }

  async load() {
    let rows;
    try {
      let symbols = this.symbols;
      const range = { type: this.type, from: isoOf(this.first), to: isoOf(this.last) };
      if (!symbols.length) {
        const found = (await get("coverage/summary", range)).data.rows;
        symbols = [...new Set(found.map((r) => r.symbol))].slice(0, MAX_LISTED);
      }
      if (!symbols.length) {
        rows = [];
      } else {
        const params = new URLSearchParams(range);
        for (const s of symbols) params.append("symbol", s);
        rows = (await get(`coverage?${params}`)).data.rows;
      }
    } catch (exc) {
      if (this.destroyed) return;
      if (exc instanceof ApiError && exc.status === 401) window.dispatchEvent(new CustomEvent("qm:unauthenticated"));
      const errors = exc instanceof ApiError ? exc.fieldErrors.map((e) => `${e.field}: ${e.message}`) : [];
      this.summary.replaceChildren(el("span", { class: "alert", role: "alert" }, [exc.message, ...errors].join(" · ")));
      return;
    }
    if (this.destroyed) return;
    performance.mark("qm-coverage-data");
    this.rows = index(rows);
    this.canvas.dataset.rows = this.rows.map((r) => r.symbol).join(",");
    this.summary.textContent = this.rows.length
      ? `${this.rows.length} symbol${this.rows.length === 1 ? "" : "s"} × ${count(this.last - this.first + 1)} days of ${this.type}, ${isoOf(this.first)} → ${isoOf(this.last)}`
      : `No symbol in the ledger for ${this.type} over ${isoOf(this.first)} → ${isoOf(this.last)}: name symbols above.`;
    this.draw();
    if (!this.measured) {
      this.measured = true;
      performance.mark("qm-coverage-drawn");
      performance.measure("qm-coverage-first-render", "qm-coverage-mount", "qm-coverage-drawn");
      performance.measure("qm-coverage-draw", "qm-coverage-data", "qm-coverage-drawn");
    }
    this.renderLegend();
    this.renderTable();
    this.renderFill();
  }

  colours() {
    const css = getComputedStyle(this.canvas);
    const read = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
    return {
      states: Object.fromEntries(STATES.map((s) => [s, read(`--cov-${s.replace("_", "-")}`, "#888")])),
      text: read("--text", "#000"),
      muted: read("--muted", "#666"),
      line: read("--line", "#ccc"),
      panel: read("--panel", "#fff"),
      accent: read("--accent", "#00f"),
    };
  }

  /** The whole grid: axis, symbol names, one rectangle per run inside the window. */
  draw() {
    if (this.destroyed || !this.wrap.isConnected) return;
    const span = this.viewSpan();
    this.viewFirst = Math.max(this.first, Math.min(this.viewFirst, this.last - span + 1));
    const first = this.viewFirst;
    const last = first + span - 1;
    this.earlier.disabled = first <= this.first;
    this.later.disabled = last >= this.last;
    const width = Math.max(320, this.wrap.clientWidth);
    const cell = (width - LEFT - 4) / span;
    const height = TOP + this.rows.length * (ROW + GAP) + 4;
    const ratio = window.devicePixelRatio || 1;
    for (const c of [this.canvas, this.overlay]) {
      c.width = Math.round(width * ratio);
      c.height = Math.round(height * ratio);
      c.style.width = `${width}px`; // CSSOM: the CSP refuses style attributes, not this
      c.style.height = `${height}px`;
    }
    Object.assign(this.canvas.dataset, {
      left: String(LEFT), top: String(TOP), cell: String(cell), row: String(ROW + GAP), rowHeight: String(ROW),
      viewFrom: isoOf(first), viewTo: isoOf(last),
    });
    this.geometry = { first, last, cell, width, height };
    const g = this.canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    const colour = this.colours();
    const x = (day) => Math.round(LEFT + (day - first) * cell);
    // the runs: one rectangle each, clipped to the window
    this.rows.forEach((row, r) => {
      const y = TOP + r * (ROW + GAP);
      for (let i = 0; i < row.runs.length; i++) {
        const a = Math.max(row.starts[i], first);
        const b = Math.min(row.ends[i], last);
        if (b < a) continue;
        g.fillStyle = colour.states[row.runs[i].state] || colour.muted;
        g.fillRect(x(a), y, Math.max(1, x(b + 1) - x(a)), ROW);
      }
    });
    // a thin gap between days once they are wide enough to tell apart
    if (cell >= 8) {
      g.fillStyle = colour.panel;
      for (let d = first + 1; d <= last; d++) g.fillRect(x(d), TOP, 1, height - TOP);
    }
    // the axis: months (a line and a name where it fits), day numbers when zoomed in
    g.font = "11px system-ui, sans-serif";
    g.textBaseline = "alphabetic";
    g.fillStyle = colour.muted;
    let lastLabel = -Infinity;
    for (let d = first; d <= last; d++) {
      const date = new Date(d * DAY_MS);
      const monthStart = date.getUTCDate() === 1 || d === first;
      if (monthStart) {
        g.fillStyle = colour.line;
        g.fillRect(x(d), TOP - 12, 1, 12);
        const name = `${MONTHS[date.getUTCMonth()]}${date.getUTCMonth() === 0 || d === first ? ` ${date.getUTCFullYear()}` : ""}`;
        if (x(d) - lastLabel > g.measureText(name).width + 8) {
          g.fillStyle = colour.muted;
          g.fillText(name, x(d) + 3, TOP - 16);
          lastLabel = x(d);
        }
      }
      if (cell >= 14) {
        g.fillStyle = colour.muted;
        g.textAlign = "center";
        g.fillText(String(date.getUTCDate()), x(d) + cell / 2, TOP - 3);
        g.textAlign = "start";
      }
    }
    // symbol names
    g.fillStyle = colour.text;
    g.font = "12px system-ui, sans-serif";
    g.textBaseline = "middle";
    this.rows.forEach((row, r) => g.fillText(row.symbol, 4, TOP + r * (ROW + GAP) + ROW / 2, LEFT - 8));
    this.canvas.dataset.drawn = String((Number(this.canvas.dataset.drawn) || 0) + 1);
    this.zoomSelect.value = this.zoom;
    this.drawOverlay();
  }

  /** What moves with the pointer: the selection and the hovered cell, on a canvas of its own. */
  drawOverlay() {
    if (!this.geometry) return;
    const { first, cell, width, height } = this.geometry;
    const ratio = window.devicePixelRatio || 1;
    const g = this.overlay.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    const colour = this.colours();
    const box = (r0, r1, d0, d1) => [
      LEFT + (d0 - first) * cell, TOP + r0 * (ROW + GAP) - 1,
      (d1 - d0 + 1) * cell, (r1 - r0 + 1) * (ROW + GAP) - GAP + 2,
    ];
    if (this.selection) {
      const s = this.norm(this.selection);
      g.strokeStyle = colour.accent;
      g.lineWidth = 2;
      g.setLineDash([5, 3]);
      g.strokeRect(...box(s.r0, s.r1, s.d0, s.d1));
      g.setLineDash([]);
    }
    if (this.hover) {
      g.strokeStyle = colour.text;
      g.lineWidth = 1.5;
      g.strokeRect(...box(this.hover.r, this.hover.r, this.hover.d, this.hover.d));
    }
  }

  norm(s) {
    return { r0: Math.min(s.r0, s.r1), r1: Math.max(s.r0, s.r1), d0: Math.min(s.d0, s.d1), d1: Math.max(s.d0, s.d1) };
  }

  /** The cell under a point of the canvas (CSS pixels), or null. */
  cellAt(px, py) {
    if (!this.geometry || px < LEFT || py < TOP) return null;
    const r = Math.floor((py - TOP) / (ROW + GAP));
    const d = this.geometry.first + Math.floor((px - LEFT) / this.geometry.cell);
    if (r < 0 || r >= this.rows.length || d > this.geometry.last) return null;
    return { r, d };
  }

  bindPointer() {
    const point = (event) => {
      const rect = this.canvas.getBoundingClientRect();
      return this.cellAt(event.clientX - rect.left, event.clientY - rect.top);
    };
    let down = null;
    let dragged = false;
    this.canvas.addEventListener("pointerdown", (event) => {
      const at = point(event);
      if (!at || event.button !== 0) return;
      down = at;
      dragged = false;
      this.canvas.setPointerCapture(event.pointerId);
    });
    this.canvas.addEventListener("pointermove", (event) => {
      const at = point(event);
      if (down && at && (dragged || at.r !== down.r || at.d !== down.d)) {
        dragged = true;
        this.selection = { r0: down.r, d0: down.d, r1: at.r, d1: at.d };
        this.renderFill();
      }
      this.showTip(at);
    });
    this.canvas.addEventListener("pointerup", (event) => {
      const at = point(event);
      const start = down;
      down = null;
      if (!start || !at) return;
      if (!dragged && at.r === start.r && at.d === start.d) this.open(at);
    });
    this.canvas.addEventListener("pointerleave", () => this.showTip(null));
    this.canvas.addEventListener("keydown", (event) => {
      const at = this.hover || { r: 0, d: this.geometry ? this.geometry.first : this.first };
      const moves = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
      if (moves[event.key]) {
        event.preventDefault();
        const [dr, dd] = moves[event.key];
        const next = { r: Math.max(0, Math.min(this.rows.length - 1, at.r + dr)), d: Math.max(this.first, Math.min(this.last, at.d + dd)) };
        if (this.geometry && (next.d < this.geometry.first || next.d > this.geometry.last)) {
          this.viewFirst += next.d < this.geometry.first ? -1 : 1;
          this.draw();
        }
        this.showTip(next);
      } else if (event.key === "Enter" && this.hover) {
        this.open(this.hover);
      }
    });
  }

  open(at) {
    const run = runAt(this.rows[at.r], at.d);
    if (run && run.queue_id) this.ctx.navigate(`#/queues/${encodeURIComponent(run.queue_id)}`);
  }

  showTip(at) {
    this.hover = at;
    this.drawOverlay();
    if (!at) {
      this.tip.hidden = true;
      return;
    }
    const row = this.rows[at.r];
    const run = runAt(row, at.d);
    if (!run) {
      this.tip.hidden = true;
      return;
    }
    const lines = [
      el("strong", {}, `${row.symbol} · ${isoOf(at.d)}`),
      el("span", { class: "cov-tip-state", dataset: { state: run.state } }, el("span", { class: `swatch-box cov-${run.state}`, "aria-hidden": "true" }), label(run.state)),
    ];
    if (run.loaded_until) lines.push(`loaded until ${run.loaded_until.replace("T", " ").replace("+00:00", "Z")}`);
    const days = dayOf(run.to) - dayOf(run.from) + 1;
    lines.push(days > 1
      ? `${count(run.records)} records over ${run.from} → ${run.to} (${days} days)`
      : `${count(run.records)} records`);
    if (run.queue_id) lines.push(`queue ${run.queue_id.slice(0, 8)} · step ${run.step} (click to open)`);
    else lines.push(run.state === "expected_gap" ? "in the expected-gap calendar: never filled" : "no queue covered it");
    this.tip.replaceChildren(...lines.map((line) => el("div", {}, line)));
    Object.assign(this.tip.dataset, { symbol: row.symbol, day: isoOf(at.d), state: run.state, queue: run.queue_id || "" });
    this.tip.hidden = false;
    const { cell, width } = this.geometry;
    const left = LEFT + (at.d - this.geometry.first + 1) * cell + 8;
    const tipWidth = this.tip.offsetWidth;
    this.tip.style.left = `${left + tipWidth > width ? Math.max(0, left - tipWidth - cell - 16) : left}px`;
    this.tip.style.top = `${TOP + (at.r + 1) * (ROW + GAP) + 2}px`;
  }

  renderLegend() {
    const totals = Object.fromEntries(STATES.map((s) => [s, 0]));
    for (const row of this.rows) {
      const days = tally(row, this.first, this.last);
      for (const s of STATES) totals[s] += days[s];
    }
    this.legendList.replaceChildren(...STATES.map((s) => el("li", { dataset: { state: s } },
      el("span", { class: `swatch-box cov-${s}`, "aria-hidden": "true" }), `${label(s)} ${count(totals[s])}`)));
  }

  renderTable() {
    if (!this.rows.length) {
      this.table.replaceChildren();
      return;
    }
    this.table.replaceChildren(el("table", { class: "rates cov-days", "aria-label": "Days per state, by symbol" },
      el("thead", {}, el("tr", {}, ["Symbol", ...STATES.map(label)].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, this.rows.map((row) => {
        const days = tally(row, this.first, this.last);
        return el("tr", { dataset: { symbol: row.symbol } }, el("th", { scope: "row" }, row.symbol),
          STATES.map((s) => el("td", { class: "num", dataset: { state: s } }, count(days[s]))));
      }))));
  }

  /** The days and symbols a fill would cover: the selection, else everything shown. */
  fillScope() {
    const s = this.selection ? this.norm(this.selection) : { r0: 0, r1: this.rows.length - 1, d0: this.first, d1: this.last };
    return { symbols: this.rows.slice(s.r0, s.r1 + 1).map((r) => r.symbol), from: isoOf(s.d0), to: isoOf(s.d1) };
  }

  renderFill() {
    if (!this.rows.length) {
      this.fillArea.replaceChildren();
      return;
    }
    const scope = this.fillScope();
    const what = el("span", { class: "cov-selection", dataset: { from: scope.from, to: scope.to, symbols: scope.symbols.join(",") } },
      this.selection ? "Selected: " : "All shown: ",
      `${scope.symbols.length} symbol${scope.symbols.length === 1 ? "" : "s"}${scope.symbols.length <= 4 ? ` (${scope.symbols.join(", ")})` : ""}, ${scope.from} → ${scope.to}`);
    const clear = this.selection
      ? el("button", { type: "button", class: "button small", onclick: () => {
        this.selection = null;
        this.drawOverlay();
        this.renderFill();
      } }, "Clear selection")
      : null;
    if (!this.canFill) {
      this.fillArea.replaceChildren(el("p", { class: "help" }, what, clear ? " " : "", clear));
      return;
    }
    const chunk = el("select", { name: "chunk", "aria-label": "Chunk" }, ["day", "week", "month"].map((c) => el("option", { value: c, selected: c === (this.chunk || "month") }, c)));
    chunk.addEventListener("change", () => { this.chunk = chunk.value; });
    const parallel = el("input", { type: "number", name: "max_parallel", min: "1", max: "100", value: String(this.parallel || 2), size: 3 });
    parallel.addEventListener("change", () => { this.parallel = Number(parallel.value) || 1; });
    const button = el("button", { type: "button", class: "button primary", onclick: () => this.fill(button) }, "Fill gaps");
    this.fillArea.replaceChildren(el("div", { class: "filters" }, what, clear,
      el("label", {}, "Chunk ", chunk), el("label", {}, "At once ", parallel), button));
  }

  fillBody(dryRun) {
    const scope = this.fillScope();
    const end = Math.min(dayOf(scope.to), today());
    return {
      symbols: scope.symbols,
      types: [this.type],
      time_range: `${scope.from}:${isoOf(Math.max(end, dayOf(scope.from)))}`,
      chunk: this.chunk || "month",
      max_parallel: this.parallel || 2,
      dry_run: dryRun,
    };
  }

  async fill(button) {
    button.disabled = true;
    try {
      const body = this.fillBody(true);
      const plan = (await post("coverage/fill", { body })).data.chunks;
      if (!plan.length) {
        notify("Nothing to fill: every selected day is complete, running or an expected gap.");
        return;
      }
      const rows = plan.slice(0, PLAN_SHOWN).map((c) => el("tr", { dataset: { symbol: c.symbol, range: c.time_range } },
        el("td", {}, c.symbol), el("td", {}, c.type), el("td", {}, c.time_range.replace(":", " → "))));
      const table = el("div", { class: "cov-plan" }, el("table", { class: "rates", "aria-label": "Chunks to run" },
        el("thead", {}, el("tr", {}, ["Symbol", "Type", "Days"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, rows)));
      const more = plan.length > PLAN_SHOWN ? `… and ${count(plan.length - PLAN_SHOWN)} more.` : null;
      const ok = await confirmAction({
        title: `Fill gaps: ${count(plan.length)} chunk${plan.length === 1 ? "" : "s"}`,
        body: [
          `A backfill of ${body.types[0]} over ${body.time_range.replace(":", " → ")}, ${body.chunk} chunks, ${body.max_parallel} at once. Only missing, failed and partial days run; complete, running and expected-gap days never do.`,
          table,
          more,
        ].filter(Boolean),
        confirm: `Start ${count(plan.length)} chunk${plan.length === 1 ? "" : "s"}`,
      });
      if (!ok) return;
      const started = (await post("coverage/fill", { body: { ...body, dry_run: false } })).data;
      if (!started.queue_id) {
        notify("Nothing to fill any more: another fill took those days.");
      } else {
        this.started.replaceChildren("Backfill started: ",
          el("a", { href: `#/queues/${encodeURIComponent(started.queue_id)}`, class: "qid", dataset: { queue: started.queue_id } }, started.queue_id.slice(0, 8)),
          ` (${count(started.chunks.length)} chunks)`);
        notify(`Fill started: ${started.chunks.length} chunks`);
        this.selection = null;
        await this.load();
      }
    } catch (exc) {
      if (exc instanceof ApiError && exc.status === 401) window.dispatchEvent(new CustomEvent("qm:unauthenticated"));
      const errors = exc instanceof ApiError ? exc.fieldErrors.map((e) => `${e.field}: ${e.message}`) : [];
      notify([`Fill refused: ${exc.message}`, ...errors].join(" · "), "error");
    } finally {
      button.disabled = false;
    }
  }

  destroy() {
    this.destroyed = true;
    window.removeEventListener("resize", this.resize);
  }
}

export function mount(container, ctx) {
  return new CoverageView(container, ctx);
}
