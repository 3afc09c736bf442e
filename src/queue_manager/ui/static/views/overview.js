// #/overview[?window=24h|7d]: runs over time by status (stacked bars, plain SVG), failure rates
// by target and by symbol, and what runs and waits now (GET /stats/overview, docs/api.md).
// Read once when shown and every REFRESH_MS after: nothing of it is on the first render path.

import { ApiError, get } from "../api.js";
import { badge, count, el, time } from "../format.js";

const REFRESH_MS = 15000;
const SVG = "http://www.w3.org/2000/svg";
/** Bottom to top: what ended well, then what failed, then what still runs or waits. */
const ORDER = ["finished", "error", "stopped", "stopping", "loading", "pending", "queued"];
const WINDOWS = ["24h", "7d"];

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  for (const child of children) node.append(child);
  return node;
}

/** Stacked bars, one per bucket; the height is the bucket's runs. Its numbers are in the table
 * under it too (a chart alone is no answer for a screen reader). */
function runsChart(data) {
  const W = 720;
  const H = 180;
  const pad = { l: 34, b: 22, t: 8 };
  const n = data.buckets.length;
  const most = Math.max(1, ...data.buckets.map((b) => Object.values(b.counts).reduce((a, c) => a + c, 0)));
  const bw = (W - pad.l) / n;
  const y = (v) => H - pad.b - (v / most) * (H - pad.b - pad.t);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "runs-chart", role: "img", "aria-labelledby": "runs-title" });
  for (const v of [0, most]) {
    chart.append(svg("line", { x1: pad.l, x2: W, y1: y(v), y2: y(v), class: "grid" }));
    chart.append(svg("text", { x: pad.l - 6, y: y(v) + 4, "text-anchor": "end", class: "tick" }, String(v)));
  }
  data.buckets.forEach((b, i) => {
    let base = 0;
    const x = pad.l + i * bw + 1;
    const g = svg("g", { "data-start": b.start });
    for (const status of ORDER) {
      const c = b.counts[status] || 0;
      if (!c) continue;
      const rect = svg("rect", { x, width: Math.max(bw - 2, 1), y: y(base + c), height: y(base) - y(base + c), class: `bar s-${status}`, "data-status": status, "data-count": c });
      rect.append(svg("title", {}, `${time(b.start)}: ${c} ${status}`));
      g.append(rect);
      base += c;
    }
    chart.append(g);
    const every = n > 24 ? 4 : 6;
    if (i % every === 0) {
      const label = data.window === "7d" ? b.start.slice(5, 10) : b.start.slice(11, 16);
      chart.append(svg("text", { x: x + bw / 2, y: H - 6, "text-anchor": "middle", class: "tick" }, label));
    }
  });
  return chart;
}

function legend(totals) {
  const shown = ORDER.filter((s) => totals[s]);
  if (!shown.length) return el("p", { class: "help" }, "No run in this window.");
  return el("ul", { class: "legend totals", "aria-label": "Runs in the window by status" },
    shown.map((s) => el("li", { dataset: { status: s } }, el("span", { class: `swatch-box s-${s}`, "aria-hidden": "true" }), `${s} ${count(totals[s])}`)));
}

/** Failure rates as a table with a bar in each row: the worst first. */
function rateTable(rows, label, keyName) {
  if (!rows.length) return el("p", { class: "help" }, "Nothing finished or failed in this window.");
  return el("table", { class: "rates", "aria-label": label },
    el("thead", {}, el("tr", {}, [keyName, "Failed", "Ended", "Failure rate"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map((r) => {
      const meter = el("span", { class: "rate-bar", "aria-hidden": "true" }, el("span", {}));
      meter.firstChild.style.width = `${(r.failure_rate * 100).toFixed(1)}%`; // CSSOM: the CSP refuses style attributes
      return el("tr", { dataset: { key: r.key } },
        el("th", { scope: "row" }, r.key),
        el("td", { class: "num" }, count(r.failed)),
        el("td", { class: "num" }, count(r.ended)),
        el("td", { class: "rate" }, meter, `${(r.failure_rate * 100).toFixed(1)}%`));
    })));
}

class OverviewView {
  constructor(container, ctx) {
    this.ctx = ctx;
    this.window = WINDOWS.includes(ctx.params.get("window")) ? ctx.params.get("window") : "24h";
    this.body = el("div", { class: "overview" }, el("p", { class: "help" }, "reading…"));
    const tabs = el("nav", { class: "tabs", "aria-label": "Window" }, WINDOWS.map((w) =>
      el("a", { href: `#/overview?window=${w}`, "aria-current": w === this.window ? "page" : undefined }, w === "24h" ? "Last 24 hours" : "Last 7 days")));
    container.append(el("h1", {}, "Overview"), tabs, this.body);
    this.refresh();
    this.timer = window.setInterval(() => this.refresh(), REFRESH_MS);
  }

  async refresh() {
    let data;
    let running;
    let queued;
    try {
      [data, running, queued] = await Promise.all([
        get("stats/overview", { window: this.window }).then((a) => a.data),
        get("queues", { status: "loading", limit: 10 }).then((a) => a.data),
        get("queues", { status: "queued", limit: 10 }).then((a) => a.data),
      ]);
    } catch (exc) {
      if (this.destroyed) return;
      if (exc instanceof ApiError && exc.status === 401) window.dispatchEvent(new CustomEvent("qm:unauthenticated"));
      this.body.replaceChildren(el("p", { class: "alert", role: "alert" }, exc.message));
      return;
    }
    if (this.destroyed) return;
    const key = JSON.stringify([data.buckets, data.by_target, data.by_symbol, data.now, running.map((q) => q.id), queued.map((q) => q.id)]);
    if (key === this.key) return;
    this.key = key;
    this.draw(data, running, queued);
  }

  draw(data, running, queued) {
    const now = Object.entries(data.now).map(([s, n]) =>
      el("div", { dataset: { status: s } }, el("dt", {}, s), el("dd", { class: "num" }, count(n))));
    const queueLinks = (list, what) => list.length
      ? el("ul", { class: "now-list", "aria-label": what }, list.map((q) => el("li", {},
        el("a", { href: `#/queues/${encodeURIComponent(q.id)}`, class: "qid", title: q.id }, q.id.slice(0, 8)),
        ` ${q.symbol} `, badge(q.status), q.position ? ` #${q.position} in line` : "")))
      : el("p", { class: "help" }, `none ${what.toLowerCase()}`);
    this.body.replaceChildren(
      el("section", { class: "card", "aria-labelledby": "runs-title" },
        el("h2", { id: "runs-title" }, `Runs by status, ${data.window === "7d" ? "6-hour" : "hourly"} buckets since ${time(data.since)}`),
        el("div", { class: "chart-wrap" }, runsChart(data)),
        legend(data.totals)),
      el("div", { class: "overview-grid" },
        el("section", { class: "card", "aria-labelledby": "target-title" },
          el("h2", { id: "target-title" }, "Failure rate by target (steps)"),
          rateTable(data.by_target, "Failure rate by target", "Target")),
        el("section", { class: "card", "aria-labelledby": "symbol-title" },
          el("h2", { id: "symbol-title" }, "Failure rate by symbol (queues)"),
          rateTable(data.by_symbol, "Failure rate by symbol", "Symbol"))),
      el("section", { class: "card", "aria-labelledby": "now-title" },
        el("h2", { id: "now-title" }, "Now"),
        el("dl", { class: "facts now", "aria-label": "Queues not ended, by status" }, now),
        el("div", { class: "overview-grid" },
          el("section", { "aria-labelledby": "running-title" }, el("h3", { id: "running-title" }, "Running"), queueLinks(running, "Running")),
          el("section", { "aria-labelledby": "waiting-title" }, el("h3", { id: "waiting-title" }, "Waiting for admission"), queueLinks(queued, "Waiting")))),
      el("p", { class: "help" }, "A run is a queue created in the window (a backfill's children, not its parent), by its status now. "
        + "A failure rate is failed / (finished + failed): stopped runs count in neither."),
    );
  }

  destroy() {
    this.destroyed = true;
    window.clearInterval(this.timer);
  }
}

export function mount(container, ctx) {
  return new OverviewView(container, ctx);
}
