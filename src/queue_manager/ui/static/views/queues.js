// #/queues[?status=&symbol=&parent=&from=&to=]: newest first, live. Messages only change the model and mark rows
// dirty; one redraw per animation frame patches the dirty rows' text (never one DOM update per message).
// Without `parent`, only top-level queues are read: a backfill's children fold under their parent (expanded on
// demand) and a schedule's older runs on the page fold under its newest one.

import { ApiError, get, post } from "../api.js";
import { confirmAction, notify } from "../dialog.js";
import { cancel, schedule } from "../frame.js";
import { age, badge, count, duration, el, ended, ms, QUEUE_STATUSES, visible } from "../format.js";
import { applyUpdate, LiveFeed } from "../live.js";

const PAGE = 100;
const CLOCK_MS = 1000;
const BUILD_SLICE = 200;

function stepsDone(queue) {
  if (queue.backfill) return `backfill ${queue.backfill.progress.finished || 0}/${queue.backfill.children}`;
  const steps = queue.steps || [];
  return `${steps.filter((s) => s.status === "finished").length}/${steps.length}`;
}

/** What runs: the targets of its steps in order (a backfill's parent has none: its type). */
function pipeline(queue) {
  const steps = queue.steps || [];
  if (!steps.length) return queue.type || "";
  return steps.map((s) => s.target).join(" → ");
}

/** The data a queue reads: `2024-01-01:2024-01-03` drawn as a range. */
const timeRange = (queue) => (queue.time_range || "").replace(":", " → ");

/** A date input's day as the API's bounds: from its start, to the end of the `to` day (UTC). */
function dayAfter(day) {
  const next = new Date(`${day}T00:00:00Z`);
  if (Number.isNaN(next.getTime())) return day; // the API names the field
  next.setUTCDate(next.getUTCDate() + 1);
  return next.toISOString().slice(0, 10);
}

/** Where a queue came from: the schedule that started it, or the backfill it is part of. */
function origin(queue) {
  if (queue.schedule) {
    return el("a", { href: `#/schedules/${encodeURIComponent(queue.schedule)}`, title: `run of schedule ${queue.schedule}` }, queue.schedule);
  }
  if (queue.parent) {
    return el("a", { href: `#/queues/${encodeURIComponent(queue.parent)}`, class: "qid", title: `part of backfill ${queue.parent}` },
      `part of ${queue.parent.slice(0, 8)}`);
  }
  return queue.backfill ? "backfill" : "";
}

class QueueList {
  constructor(container, ctx) {
    this.ctx = ctx;
    this.status = ctx.params.get("status") || "";
    this.symbol = (ctx.params.get("symbol") || "").toUpperCase();
    this.parent = ctx.params.get("parent") || "";
    this.from = ctx.params.get("from") || "";
    this.to = ctx.params.get("to") || "";
    this.operator = ctx.session.can("operator");
    this.selected = new Set(); // ids ticked for a bulk stop or retry
    this.expanded = new Set(); // backfill parents whose children are shown
    this.unfolded = new Set(); // schedules whose older runs are shown
    this.limit = Math.min(1000, Math.max(1, Number(ctx.params.get("limit")) || PAGE));
    this.rows = new Map();
    this.order = [];
    this.dirty = new Set();
    this.visible = new Set();
    this.checked = new Set(); // unknown ids looked up already
    this.unknown = new Set();
    this.nextCursor = null;
    this.loaded = false;
    this.generation = 0;
    this.build(container);
    this.observer = new IntersectionObserver((entries) => this.seen(entries), { rootMargin: "200px" });
    this.feed = new LiveFeed({
      onMessages: (batch) => this.apply(batch),
      onResync: () => this.reload(),
    });
    this.fallback = window.setTimeout(() => this.loaded || this.reload(), 1000);
    this.clock = window.setInterval(() => schedule("list-clock", () => this.tick()), CLOCK_MS);
  }

  build(container) {
    const status = el(
      "select",
      { id: "filter-status", name: "status" },
      el("option", { value: "" }, "any status"),
      QUEUE_STATUSES.map((s) => el("option", { value: s, selected: s === this.status }, s)),
    );
    const symbol = el("input", {
      id: "filter-symbol", name: "symbol", value: this.symbol, placeholder: "e.g. BTCUSDT",
      autocomplete: "off", spellcheck: "false", "aria-describedby": "filter-symbol-error", size: "12",
    });
    this.symbolError = el("span", { id: "filter-symbol-error", class: "field-error", role: "alert" });
    const from = el("input", { id: "filter-from", name: "from", type: "date", value: this.from, "aria-describedby": "filter-symbol-error" });
    const to = el("input", { id: "filter-to", name: "to", type: "date", value: this.to, "aria-describedby": "filter-symbol-error" });
    const form = el(
      "form",
      { class: "filters", role: "search", "aria-label": "Filter queues" },
      el("label", { for: "filter-status" }, "Status"), status,
      el("label", { for: "filter-symbol" }, "Symbol"), symbol,
      el("label", { for: "filter-from", title: "Created on or after this day (UTC)" }, "Created from"), from,
      el("label", { for: "filter-to", title: "Created on or before this day (UTC)" }, "to"), to,
      el("button", { type: "submit", class: "button" }, "Filter"),
      this.symbolError,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const params = new URLSearchParams();
      if (status.value) params.set("status", status.value);
      if (symbol.value.trim()) params.set("symbol", symbol.value.trim().toUpperCase());
      if (from.value) params.set("from", from.value);
      if (to.value) params.set("to", to.value);
      if (this.parent) params.set("parent", this.parent);
      if (this.limit !== PAGE) params.set("limit", String(this.limit));
      const query = params.toString();
      this.ctx.navigate(`#/queues${query ? `?${query}` : ""}`);
    });
    this.summary = el("p", { class: "summary", "aria-live": "polite" }, "loading…");
    this.body = el("div", { role: "rowgroup", class: "rows" });
    const header = el(
      "div",
      { role: "row", class: "qrow list head" },
      ["Queue", "Symbol", "Pipeline", "Time range", "Origin", "Status", "Steps done", "Records", "Age", "Duration"].map((t) =>
        el("span", { role: "columnheader" }, t),
      ),
    );
    this.bulk = this.operator ? this.bulkBar() : null;
    this.table = el(
      "div",
      { role: "table", class: "queues", "aria-label": "Queues, newest first", "aria-rowcount": "-1" },
      el("div", { role: "rowgroup" }, header),
      this.body,
    );
    this.more = el("button", { type: "button", class: "button", hidden: true }, "Load more");
    this.more.addEventListener("click", () => this.loadMore());
    const actions = this.ctx.session.can("operator")
      ? el("a", { href: "#/start", class: "button primary" }, "Start a queue")
      : null;
    container.append(
      el("div", { class: "title-row" }, el("h1", {}, "Queues"), actions),
      form,
      this.summary,
      this.bulk,
      this.table,
      el("div", { class: "paging" }, this.more),
    );
  }

  params(cursor, limit) {
    return {
      status: this.status, symbol: this.symbol, parent: this.parent, limit: limit || this.limit, cursor,
      top_level: this.parent ? undefined : "true",
      created_from: this.from || undefined,
      created_to: this.to ? dayAfter(this.to) : undefined,
    };
  }

  /** Stop or retry the ticked queues: a dialog names each one first. */
  bulkBar() {
    this.bulkCount = el("span", { class: "bulk-count", "aria-live": "polite" }, "none selected");
    this.stopButton = el("button", { type: "button", class: "button danger", disabled: true }, "Stop selected");
    this.retryButton = el("button", { type: "button", class: "button", disabled: true }, "Retry selected");
    this.stopButton.addEventListener("click", () => this.bulkAction("stop"));
    this.retryButton.addEventListener("click", () => this.bulkAction("retry"));
    return el("div", { class: "bulk", role: "toolbar", "aria-label": "Selected queues" }, this.bulkCount, this.stopButton, this.retryButton);
  }

  selectionChanged() {
    if (!this.bulk) return;
    const n = this.selected.size;
    this.bulkCount.textContent = n ? `${n} selected` : "none selected";
    this.stopButton.disabled = this.retryButton.disabled = n === 0;
  }

  async bulkAction(kind) {
    const queues = [...this.selected].map((id) => this.rows.get(id)?.queue).filter(Boolean);
    if (!queues.length) return;
    const verb = kind === "stop" ? "Stop" : "Retry";
    const ok = await confirmAction({
      title: `${verb} ${queues.length} queue${queues.length === 1 ? "" : "s"}?`,
      body: [
        kind === "stop"
          ? "Sends each the stop command; their workers get the grace period to finish."
          : "Runs again what did not finish in each (error or stopped queues); finished steps are kept.",
        ...queues.map((q) => `${q.id.slice(0, 8)} · ${q.symbol} · ${pipeline(q)} · ${q.status}`),
      ],
      confirm: verb,
      danger: kind === "stop",
    });
    if (!ok) return;
    const failed = [];
    await Promise.all(queues.map(async (q) => {
      try {
        if (kind === "stop") await post("queues/stop", { params: { queue_id: q.id } });
        else await post(`queues/${encodeURIComponent(q.id)}/retry`);
      } catch (exc) {
        failed.push(`${q.id.slice(0, 8)}: ${exc.message}`);
      }
    }));
    const done = queues.length - failed.length;
    const past = kind === "stop" ? "stopped" : "retried";
    if (done) notify(`${done} queue${done === 1 ? "" : "s"} ${past}`);
    if (failed.length) notify(`Not ${past}: ${failed.join("; ")}`, "error");
    for (const q of queues) {
      this.selected.delete(q.id);
      const box = this.rows.get(q.id)?.cells.select;
      if (box) box.checked = false;
    }
    this.selectionChanged();
  }

  /** First load and every reconnect: re-read as many queues as are shown. */
  async reload() {
    const generation = ++this.generation;
    const wanted = Math.max(this.limit, this.order.length);
    const fetched = [];
    let cursor;
    try {
      do {
        const answer = await get("queues", this.params(cursor, Math.min(1000, wanted - fetched.length)));
        if (generation !== this.generation) return;
        fetched.push(...answer.data);
        cursor = answer.next_cursor;
      } while (cursor && fetched.length < wanted);
    } catch (exc) {
      this.failed(exc);
      return;
    }
    this.loaded = true;
    this.nextCursor = cursor || null;
    await this.replace(fetched);
  }

  async loadMore() {
    if (!this.nextCursor) return;
    this.more.disabled = true;
    const generation = this.generation;
    try {
      const answer = await get("queues", this.params(this.nextCursor));
      if (generation !== this.generation) return;
      this.nextCursor = answer.next_cursor || null;
      await this.append(answer.data);
    } catch (exc) {
      this.failed(exc);
    } finally {
      this.more.disabled = false;
    }
  }

  failed(exc) {
    if (exc instanceof ApiError && exc.status === 422) {
      this.symbolError.textContent = exc.fieldErrors.map((e) => `${e.field}: ${e.message}`).join("; ");
      this.summary.textContent = "fix the filter";
      return;
    }
    if (exc instanceof ApiError && exc.status === 401) window.dispatchEvent(new CustomEvent("qm:unauthenticated"));
    this.summary.textContent = `could not read the queues: ${exc.message}`;
  }

  row(queue) {
    const cells = {
      link: el("a", { href: `#/queues/${encodeURIComponent(queue.id)}`, class: "qid", title: queue.id }, queue.id.slice(0, 8)),
      symbol: el("span", { role: "cell", class: "symbol" }, queue.symbol),
      pipeline: el("span", { role: "cell", class: "pipeline", title: (queue.steps || []).map((s) => `${s.target}: ${s.type}`).join("\n") || queue.type }, pipeline(queue)),
      range: el("span", { role: "cell", class: "range" }, timeRange(queue)),
      origin: el("span", { role: "cell", class: "origin" }, origin(queue)),
      status: el("span", { role: "cell", class: "status" }),
      steps: el("span", { role: "cell", class: "steps" }),
      records: el("span", { role: "cell", class: "num records" }),
      age: el("span", { role: "cell", class: "age" }),
      duration: el("span", { role: "cell", class: "duration" }),
    };
    const first = el("span", { role: "cell", class: "qcell" });
    if (this.operator) {
      cells.select = el("input", { type: "checkbox", class: "select", "aria-label": `Select queue ${queue.id.slice(0, 8)}`, checked: this.selected.has(queue.id) });
      cells.select.addEventListener("change", () => {
        if (cells.select.checked) this.selected.add(queue.id);
        else this.selected.delete(queue.id);
        this.selectionChanged();
      });
      first.append(cells.select);
    }
    first.append(cells.link);
    if (queue.backfill && !this.parent) {
      cells.fold = el("button", { type: "button", class: "fold", "aria-expanded": "false" });
      cells.fold.addEventListener("click", () => this.toggleChildren(queue.id));
      cells.origin.append(" ", cells.fold);
    }
    const node = el(
      "div",
      { role: "row", class: `qrow list${queue.parent && !this.parent ? " child" : ""}`, dataset: { queue: queue.id } },
      first,
      cells.symbol, cells.pipeline, cells.range, cells.origin, cells.status, cells.steps, cells.records, cells.age, cells.duration,
    );
    const entry = { queue, node, cells, text: {} };
    this.draw(entry);
    this.clockOf(entry, Date.now());
    this.observer.observe(node);
    return entry;
  }

  set(entry, key, value) {
    if (entry.text[key] !== value) {
      entry.text[key] = value;
      entry.cells[key].textContent = value;
    }
  }

  draw(entry) {
    const q = entry.queue;
    if (entry.text.status !== q.status) {
      entry.text.status = q.status;
      entry.cells.status.replaceChildren(badge(q.status));
      entry.node.dataset.status = q.status;
      entry.node.dataset.ended = String(ended(q));
      entry.cells.status.title = visible(q.error_message || "");
    }
    this.set(entry, "steps", stepsDone(q));
    this.set(entry, "records", count(q.records_written));
    if (entry.cells.fold) {
      const n = q.backfill.children || 0;
      const open = this.expanded.has(q.id);
      this.set(entry, "fold", `${open ? "▾" : "▸"} ${n} child${n === 1 ? "" : "ren"}`);
      entry.cells.fold.setAttribute("aria-expanded", String(open));
    }
  }

  /** A backfill's children, read when its row is expanded and drawn right under it. */
  async toggleChildren(parentId) {
    const parent = this.rows.get(parentId);
    if (!parent) return;
    if (this.expanded.has(parentId)) {
      this.expanded.delete(parentId);
      for (const entry of parent.kids || []) this.drop(entry.queue.id);
      parent.kids = [];
      this.draw(parent);
      return;
    }
    this.expanded.add(parentId);
    this.draw(parent);
    await this.showChildren(parent);
  }

  async showChildren(parent) {
    const generation = this.generation;
    let children;
    try {
      children = (await get("queues", { parent: parent.queue.id, limit: 1000 })).data;
    } catch (exc) {
      this.failed(exc);
      return;
    }
    if (generation !== this.generation || !this.expanded.has(parent.queue.id)) return;
    // Oldest chunk first under its parent: the order the backfill runs them.
    children.sort((a, b) => (a.time_range < b.time_range ? -1 : a.time_range > b.time_range ? 1 : 0));
    for (const entry of parent.kids || []) this.drop(entry.queue.id);
    parent.kids = children.map((queue) => {
      const entry = this.row(queue);
      this.rows.set(queue.id, entry);
      return entry;
    });
    parent.node.after(...parent.kids.map((e) => e.node));
  }

  drop(id) {
    const entry = this.rows.get(id);
    if (!entry) return;
    this.observer.unobserve(entry.node);
    entry.node.remove();
    this.rows.delete(id);
    this.visible.delete(id);
  }

  /** A schedule's runs on the page: the newest shown, the older ones folded under it. */
  foldRuns() {
    const newest = new Map();
    for (const id of this.order) {
      const entry = this.rows.get(id);
      const name = entry && entry.queue.schedule;
      if (!name) continue;
      const head = newest.get(name);
      if (!head) {
        newest.set(name, { entry, older: [] });
      } else {
        head.older.push(entry);
      }
    }
    for (const [name, { entry, older }] of newest) {
      const open = this.unfolded.has(name);
      for (const run of older) {
        run.node.hidden = !open;
        run.node.classList.add("child");
      }
      entry.node.classList.remove("child");
      entry.node.hidden = false;
      if (!older.length) {
        entry.cells.runs?.remove();
        entry.cells.runs = null;
        continue;
      }
      if (!entry.cells.runs) {
        entry.cells.runs = el("button", { type: "button", class: "fold" });
        entry.cells.runs.addEventListener("click", () => {
          if (this.unfolded.has(name)) this.unfolded.delete(name);
          else this.unfolded.add(name);
          this.foldRuns();
        });
        entry.cells.origin.append(" ", entry.cells.runs);
      }
      entry.cells.runs.textContent = `${open ? "▾" : "▸"} ${older.length} earlier run${older.length === 1 ? "" : "s"}`;
      entry.cells.runs.setAttribute("aria-expanded", String(open));
    }
  }

  clockOf(entry, now) {
    const q = entry.queue;
    this.set(entry, "age", age(q.created_at, now));
    this.set(entry, "duration", duration(q.started_at, q.finished_at, now));
  }

  tick() {
    const now = Date.now();
    for (const id of this.visible) {
      const entry = this.rows.get(id);
      if (entry) this.clockOf(entry, now);
    }
  }

  seen(entries) {
    const now = Date.now();
    for (const entry of entries) {
      const id = entry.target.dataset.queue;
      if (entry.isIntersecting) {
        this.visible.add(id);
        const row = this.rows.get(id);
        if (row) this.clockOf(row, now);
      } else {
        this.visible.delete(id);
      }
    }
  }

  /** New rows are built a slice per frame, so a page of 1,000 never blocks the main thread. */
  async entries(queues, generation) {
    const out = [];
    for (let i = 0; i < queues.length; i += BUILD_SLICE) {
      if (i) await new Promise((resolve) => window.requestAnimationFrame(resolve));
      if (generation !== this.generation) return null;
      for (const queue of queues.slice(i, i + BUILD_SLICE)) {
        let entry = this.rows.get(queue.id);
        if (entry) {
          entry.queue = queue;
          this.draw(entry);
        } else {
          entry = this.row(queue);
        }
        out.push(entry);
      }
    }
    return out;
  }

  async replace(queues) {
    const generation = this.generation;
    const built = await this.entries(queues, generation);
    if (!built) return;
    const keep = new Set(queues.map((q) => q.id));
    for (const [id, entry] of this.rows) {
      if (!keep.has(id)) {
        this.observer.unobserve(entry.node);
        this.rows.delete(id);
        this.visible.delete(id);
      }
    }
    for (const entry of built) {
      entry.kids = entry.queue.backfill ? [] : undefined;
      this.rows.set(entry.queue.id, entry);
    }
    this.order = built.map((e) => e.queue.id);
    this.body.replaceChildren(...built.map((e) => e.node));
    this.dirty.clear();
    this.foldRuns();
    this.summarise();
    for (const entry of built) if (this.expanded.has(entry.queue.id)) this.showChildren(entry);
  }

  async append(queues) {
    const generation = this.generation;
    const built = await this.entries(queues.filter((q) => !this.rows.has(q.id)), generation);
    if (!built) return;
    for (const entry of built) {
      entry.kids = entry.queue.backfill ? [] : undefined;
      this.rows.set(entry.queue.id, entry);
      this.order.push(entry.queue.id);
    }
    this.body.append(...built.map((e) => e.node));
    this.foldRuns();
    this.summarise();
  }

  summarise() {
    const n = this.order.length;
    const filters = [
      this.status && `status ${this.status}`, this.symbol && `symbol ${this.symbol}`,
      this.parent && `backfill ${this.parent.slice(0, 8)}`,
      this.from && `created from ${this.from}`, this.to && `created to ${this.to}`,
    ].filter(Boolean);
    if (!n) {
      this.summary.replaceChildren(filters.length ? `No queue with ${filters.join(", ")}.` : "No queues yet.");
    } else {
      this.summary.textContent =
        `${count(n)} queue${n === 1 ? "" : "s"} shown, newest first` +
        (filters.length ? ` (${filters.join(", ")})` : "") + (this.nextCursor ? "; more below" : "");
    }
    this.table.dataset.count = String(n);
    this.more.hidden = !this.nextCursor;
  }

  /** A batch of socket messages: model changes only, then one redraw at the next frame. */
  apply(batch) {
    for (const m of batch) {
      const entry = this.rows.get(m.queue_id);
      if (!entry) {
        if (m.event === "queue.updated" && !this.checked.has(m.queue_id)) this.unknown.add(m.queue_id);
        continue;
      }
      if (applyUpdate(entry.queue, m)) this.dirty.add(m.queue_id);
    }
    if (this.dirty.size) schedule("list-rows", () => this.redraw());
    if (this.unknown.size && !this.lookup) this.lookup = window.setTimeout(() => this.lookUp(), 300);
  }

  redraw() {
    const now = Date.now();
    for (const id of this.dirty) {
      const entry = this.rows.get(id);
      if (!entry) continue;
      this.draw(entry);
      this.clockOf(entry, now); // a queue that started or ended: its duration at once
    }
    this.dirty.clear();
  }

  /** Queues we have not listed: new ones go on top when they match the filters. */
  async lookUp() {
    this.lookup = null;
    const ids = [...this.unknown].slice(0, 20);
    this.unknown.clear();
    const newest = this.order.length ? ms(this.rows.get(this.order[0]).queue.created_at) : 0;
    const found = [];
    await Promise.all(
      ids.map(async (id) => {
        this.checked.add(id);
        try {
          found.push((await get(`queues/${encodeURIComponent(id)}`)).data);
        } catch {
          // gone or not readable: nothing to show
        }
      }),
    );
    const fresh = found
      .filter((q) => !this.rows.has(q.id) && ms(q.created_at) >= newest)
      .filter((q) => (!this.status || q.status === this.status) && (!this.symbol || q.symbol === this.symbol))
      .filter((q) => (this.parent ? q.parent === this.parent : !q.parent))
      .filter((q) => (!this.from || q.created_at.slice(0, 10) >= this.from) && (!this.to || q.created_at.slice(0, 10) <= this.to))
      .sort((a, b) => ms(b.created_at) - ms(a.created_at));
    if (!fresh.length) return;
    schedule("list-insert", () => {
      const nodes = [];
      for (const queue of fresh) {
        const entry = this.row(queue);
        this.rows.set(queue.id, entry);
        nodes.push(entry.node);
      }
      this.order.unshift(...fresh.map((q) => q.id));
      this.body.prepend(...nodes);
      this.foldRuns();
      this.summarise();
    });
  }

  destroy() {
    this.generation += 1;
    this.feed.close();
    this.observer.disconnect();
    window.clearInterval(this.clock);
    window.clearTimeout(this.fallback);
    window.clearTimeout(this.lookup);
    cancel("list-rows");
    cancel("list-clock");
    cancel("list-insert");
  }
}

export function mount(container, ctx) {
  return new QueueList(container, ctx);
}
