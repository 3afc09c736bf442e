// #/queues/<id> when the queue is a backfill's parent: its progress (children by status, as a
// bar and in words), its children, live, and stop / retry for the whole backfill. The queue view
// hands over to this one when the queue it read has a `backfill`.

import { ApiError, get, post } from "../api.js";
import { confirmAction, notify } from "../dialog.js";
import { cancel, schedule } from "../frame.js";
import { badge, count, duration, el, ended, ms, time } from "../format.js";
import { applyUpdate, LiveFeed } from "../live.js";

const PAGE = 1000;
// the bar's order: what is done, then what runs, then what waits
const BAR = ["finished", "error", "stopped", "stopping", "loading", "pending", "queued"];

class BackfillView {
  constructor(container, ctx, parent) {
    this.ctx = ctx;
    this.parent = parent;
    this.id = parent.id;
    this.children = new Map();
    this.head = el("div", { class: "queue-head" });
    this.actions = el("div", { class: "actions", role: "toolbar", "aria-label": "Backfill actions" });
    this.bar = el("div", { class: "progress", role: "img" });
    this.words = el("p", { class: "summary", id: "backfill-progress", "aria-live": "polite" });
    this.body = el("div", { role: "rowgroup", class: "rows" });
    const header = el("div", { role: "row", class: "crow head" },
      ["Queue", "Symbol", "Time range", "Status", "Records", "Duration"].map((t) => el("span", { role: "columnheader" }, t)));
    container.append(
      el("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, el("a", { href: "#/queues" }, "← Queues")),
      this.head,
      this.actions,
      el("section", { class: "card", "aria-labelledby": "progress-title" },
        el("h2", { id: "progress-title" }, "Progress"), this.bar, this.words),
      el("section", { class: "card", "aria-labelledby": "children-title" },
        el("h2", { id: "children-title" }, "Children"),
        el("div", { role: "table", class: "queues children", "aria-labelledby": "children-title" },
          el("div", { role: "rowgroup" }, header), this.body)),
    );
    this.draw();
    this.feed = new LiveFeed({ onMessages: (batch) => this.apply(batch), onResync: () => this.reload() });
    this.clock = window.setInterval(() => schedule("backfill-clock", () => this.tick()), 1000);
  }

  async reload() {
    try {
      const parent = (await get(`queues/${encodeURIComponent(this.id)}`)).data;
      const children = [];
      let cursor;
      do {
        const answer = await get("queues", { parent: this.id, limit: PAGE, cursor });
        children.push(...answer.data);
        cursor = answer.next_cursor;
      } while (cursor);
      if (this.destroyed) return;
      // in the order of the range: by symbol, then by chunk
      children.sort((a, b) => a.symbol.localeCompare(b.symbol) || ms(a.start_time) - ms(b.start_time));
      this.parent = parent;
      this.children = new Map(children.map((c) => [c.id, { queue: c, node: null }]));
      this.body.replaceChildren(...children.map((c) => this.childRow(this.children.get(c.id))));
      this.draw();
    } catch (exc) {
      if (this.destroyed) return;
      if (exc instanceof ApiError && exc.status === 401) window.dispatchEvent(new CustomEvent("qm:unauthenticated"));
      notify(`could not read the backfill: ${exc.message}`, "error");
    }
  }

  /** Socket messages: the parent's own update carries its progress; children update their rows. */
  apply(batch) {
    let dirty = false;
    for (const m of batch) {
      if (m.queue_id === this.id) {
        if (applyUpdate(this.parent, m)) dirty = true;
        continue;
      }
      const entry = this.children.get(m.queue_id);
      if (entry && applyUpdate(entry.queue, m)) {
        entry.dirty = true;
        dirty = true;
      }
    }
    if (dirty) schedule("backfill", () => this.draw());
  }

  draw() {
    this.drawHead();
    this.drawProgress();
    this.drawActions();
    for (const entry of this.children.values()) {
      if (entry.dirty) this.drawChild(entry);
    }
  }

  tick() {
    this.drawHead();
    for (const entry of this.children.values()) {
      if (!ended(entry.queue)) this.drawChild(entry);
    }
  }

  drawHead() {
    const q = this.parent;
    const b = q.backfill;
    const facts = [
      ["Symbols", b.symbols.join(", ")],
      ["Time range", q.time_range],
      ["Chunk", b.chunk],
      ["Max parallel", String(b.max_parallel)],
      ["Records", count(q.records_written)],
      ["Created", `${time(q.created_at)} by ${q.created_by || "—"}`],
      ["Duration", duration(q.started_at, q.finished_at)],
    ];
    if (q.retries) facts.push(["Retries", String(q.retries)]);
    if (q.stopped_by) facts.push(["Stopped by", q.stopped_by]);
    const key = JSON.stringify(facts) + q.status + q.error_message;
    if (key === this.headKey) return;
    this.headKey = key;
    this.head.replaceChildren(
      el("div", { class: "title-row" },
        el("h1", {}, "Backfill ", el("span", { class: "qid", title: q.id }, q.id.slice(0, 8))),
        el("span", { id: "queue-status", dataset: { ended: String(ended(q)) } }, badge(q.status))),
      el("p", { class: "full-id" }, q.id),
      el("dl", { class: "facts" }, facts.map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v)))),
      q.error_message ? el("p", { class: "alert", role: "alert", id: "queue-error" }, q.error_message) : "",
    );
  }

  drawProgress() {
    const progress = this.parent.backfill.progress || {};
    const total = this.parent.backfill.children || Object.values(progress).reduce((a, b) => a + b, 0);
    const key = JSON.stringify(progress);
    if (key === this.progressKey) return;
    this.progressKey = key;
    const present = BAR.filter((s) => progress[s]);
    this.bar.replaceChildren(...present.map((s) => {
      const part = el("span", { class: `part s-${s}`, dataset: { status: s }, title: `${progress[s]} ${s}` });
      part.style.flexGrow = String(progress[s]);
      return part;
    }));
    const words = present.map((s) => `${progress[s]} ${s}`).join(" · ");
    const done = (progress.finished || 0);
    this.bar.setAttribute("aria-label", `${done} of ${total} children finished: ${words}`);
    this.bar.dataset.finished = String(done);
    this.words.textContent = `${done} of ${total} children finished${words ? ` — ${words}` : ""}`;
  }

  drawActions() {
    const q = this.parent;
    const allowed = this.ctx.session.can("operator");
    const key = `${allowed}:${q.status}`;
    if (key === this.actionsKey) return;
    this.actionsKey = key;
    const buttons = [];
    const short = q.id.slice(0, 8);
    if (allowed && !ended(q) && q.status !== "stopping") {
      buttons.push(el("button", { type: "button", class: "button", onclick: () => this.act(
        { title: `Stop backfill ${short}?`, danger: true, confirm: "Stop",
          body: ["Every child that has not ended is stopped: queued ones never start, running ones get the stop command."] },
        () => post("queues/stop", { params: { queue_id: q.id } })) }, "Stop"));
    }
    if (allowed && !ended(q)) {
      buttons.push(el("button", { type: "button", class: "button danger", onclick: () => this.act(
        { title: `Force stop backfill ${short}?`, danger: true, confirm: "Force stop",
          body: ["Deletes the jobs of every running child at once, without waiting for its workers."] },
        () => post("queues/stop", { params: { queue_id: q.id, force: "true" } })) }, "Force stop"));
    }
    if (allowed && ["error", "stopped"].includes(q.status)) {
      buttons.push(el("button", { type: "button", class: "button primary", onclick: () => this.act(
        { title: `Retry backfill ${short}?`, confirm: "Retry",
          body: ["Only the children that ended in error or were stopped run again; finished children are kept."] },
        () => post(`queues/${encodeURIComponent(q.id)}/retry`)) }, "Retry failed children"));
    }
    this.actions.replaceChildren(...buttons);
    this.actions.hidden = !buttons.length;
  }

  async act(ask, call) {
    if (!(await confirmAction(ask))) return;
    try {
      notify((await call()).message);
      this.reload();
    } catch (exc) {
      notify(exc.message, "error");
    }
  }

  childRow(entry) {
    const q = entry.queue;
    entry.cells = {
      status: el("span", { role: "cell", class: "status" }),
      records: el("span", { role: "cell", class: "num records" }),
      duration: el("span", { role: "cell", class: "duration" }),
    };
    entry.node = el("div", { role: "row", class: "crow", dataset: { queue: q.id } },
      el("span", { role: "cell" }, el("a", { href: `#/queues/${encodeURIComponent(q.id)}`, class: "qid", title: q.id }, q.id.slice(0, 8))),
      el("span", { role: "cell", class: "symbol" }, q.symbol),
      el("span", { role: "cell", class: "range" }, q.time_range),
      entry.cells.status, entry.cells.records, entry.cells.duration);
    this.drawChild(entry);
    return entry.node;
  }

  drawChild(entry) {
    entry.dirty = false;
    if (!entry.node) return;
    const q = entry.queue;
    if (entry.node.dataset.status !== q.status) {
      entry.node.dataset.status = q.status;
      entry.node.dataset.ended = String(ended(q));
      entry.cells.status.replaceChildren(badge(q.status));
    }
    entry.cells.records.textContent = count(q.records_written);
    entry.cells.duration.textContent = duration(q.started_at, q.finished_at);
  }

  destroy() {
    this.destroyed = true;
    this.feed.close();
    window.clearInterval(this.clock);
    cancel("backfill");
    cancel("backfill-clock");
  }
}

export function mount(container, ctx, parent) {
  return new BackfillView(container, ctx, parent);
}
