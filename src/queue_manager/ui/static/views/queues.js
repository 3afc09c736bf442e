// #/queues[?status=&symbol=&parent=]: newest first, live. Messages only change the model and mark rows dirty; one
// redraw per animation frame patches the dirty rows' text (never one DOM update per message).

import { ApiError, get } from "../api.js";
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
    const form = el(
      "form",
      { class: "filters", role: "search", "aria-label": "Filter queues" },
      el("label", { for: "filter-status" }, "Status"), status,
      el("label", { for: "filter-symbol" }, "Symbol"), symbol,
      el("button", { type: "submit", class: "button" }, "Filter"),
      this.symbolError,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const params = new URLSearchParams();
      if (status.value) params.set("status", status.value);
      if (symbol.value.trim()) params.set("symbol", symbol.value.trim().toUpperCase());
      if (this.parent) params.set("parent", this.parent);
      if (this.limit !== PAGE) params.set("limit", String(this.limit));
      const query = params.toString();
      this.ctx.navigate(`#/queues${query ? `?${query}` : ""}`);
    });
    this.summary = el("p", { class: "summary", "aria-live": "polite" }, "loading…");
    this.body = el("div", { role: "rowgroup", class: "rows" });
    const header = el(
      "div",
      { role: "row", class: "qrow head" },
      ["Queue", "Symbol", "Origin", "Status", "Steps done", "Records", "Age", "Duration"].map((t) =>
        el("span", { role: "columnheader" }, t),
      ),
    );
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
      this.table,
      el("div", { class: "paging" }, this.more),
    );
  }

  params(cursor, limit) {
    return { status: this.status, symbol: this.symbol, parent: this.parent, limit: limit || this.limit, cursor };
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
      origin: el("span", { role: "cell", class: "origin" }, origin(queue)),
      status: el("span", { role: "cell", class: "status" }),
      steps: el("span", { role: "cell", class: "steps" }),
      records: el("span", { role: "cell", class: "num records" }),
      age: el("span", { role: "cell", class: "age" }),
      duration: el("span", { role: "cell", class: "duration" }),
    };
    const node = el(
      "div",
      { role: "row", class: "qrow", dataset: { queue: queue.id } },
      el("span", { role: "cell" }, cells.link),
      cells.symbol, cells.origin, cells.status, cells.steps, cells.records, cells.age, cells.duration,
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
    for (const entry of built) this.rows.set(entry.queue.id, entry);
    this.order = built.map((e) => e.queue.id);
    this.body.replaceChildren(...built.map((e) => e.node));
    this.dirty.clear();
    this.summarise();
  }

  async append(queues) {
    const generation = this.generation;
    const built = await this.entries(queues.filter((q) => !this.rows.has(q.id)), generation);
    if (!built) return;
    for (const entry of built) {
      this.rows.set(entry.queue.id, entry);
      this.order.push(entry.queue.id);
    }
    this.body.append(...built.map((e) => e.node));
    this.summarise();
  }

  summarise() {
    const n = this.order.length;
    const filters = [
      this.status && `status ${this.status}`, this.symbol && `symbol ${this.symbol}`,
      this.parent && `backfill ${this.parent.slice(0, 8)}`,
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
      .filter((q) => !this.parent || q.parent === this.parent)
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
