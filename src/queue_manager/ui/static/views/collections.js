// #/collections[?prefix=btc_]: the catalog of collections steps wrote (GET /collections), searched
// by name prefix. #/collections/<name>: one collection (GET /collections/{name}) with its
// producer and its lineage as a small plain-SVG graph: inputs → producer step → this
// collection → consumers, every node a link (a collection's page, or the queue that ran it).

import { ApiError, get } from "../api.js";
import { count, el, time } from "../format.js";

const SVG = "http://www.w3.org/2000/svg";
const PREFIX = /^[A-Za-z0-9_-]{1,128}$/;
const PAGE = 100;
/** Lineage geometry: four columns of nodes. */
const COL_W = 210;
const COL_GAP = 56;
const NODE_H = 46;
const NODE_GAP = 12;
const HEAD = 26;
const MAX_NODES = 12;

const collectionHref = (name) => `#/collections/${encodeURIComponent(name)}`;
const queueHref = (id) => `#/queues/${encodeURIComponent(id)}`;

function unauthenticated(exc) {
  if (exc instanceof ApiError && exc.status === 401) window.dispatchEvent(new CustomEvent("qm:unauthenticated"));
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  for (const child of children) node.append(typeof child === "string" ? document.createTextNode(child) : child);
  return node;
}

const clip = (text, n = 30) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

class CollectionList {
  constructor(container, ctx) {
    this.ctx = ctx;
    const asked = ctx.params.get("prefix") || "";
    this.prefix = PREFIX.test(asked) ? asked : "";
    this.input = el("input", { type: "search", name: "prefix", value: this.prefix, placeholder: "btc_candles_", pattern: "[A-Za-z0-9_\\-]{1,128}", size: 28, "aria-describedby": "prefix-help" });
    this.summary = el("p", { class: "summary", "aria-live": "polite" }, "reading…");
    this.body = el("tbody", {});
    this.more = el("button", { type: "button", class: "button", hidden: true, onclick: () => this.read(true) }, "Load more");
    container.append(
      el("h1", {}, "Collections"),
      el("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() },
        el("label", {}, "Name starts with ", this.input),
        el("span", { id: "prefix-help", class: "help" }, "letters, digits, _ and -")),
      this.summary,
      el("table", { class: "rates collections", "aria-label": "Collections, by name" },
        el("thead", {}, el("tr", {}, ["Collection", "Written by", "Symbol", "Time range", "Last written", "Writes"].map((h) => el("th", { scope: "col" }, h)))),
        this.body),
      this.more,
    );
    this.input.addEventListener("input", () => {
      window.clearTimeout(this.typing);
      this.typing = window.setTimeout(() => this.search(), 250);
    });
    this.read(false);
  }

  search() {
    const value = this.input.value.trim();
    if (value && !PREFIX.test(value)) {
      this.summary.textContent = "A prefix holds only letters, digits, _ and -.";
      return;
    }
    this.prefix = value;
    // the address follows the search without routing again (replaceState fires no hashchange)
    window.history.replaceState(null, "", value ? `#/collections?prefix=${encodeURIComponent(value)}` : "#/collections");
    this.read(false);
  }

  async read(more) {
    const asked = this.prefix;
    let answer;
    try {
      answer = await get("collections", { prefix: asked, limit: PAGE, after: more ? this.after : undefined });
    } catch (exc) {
      if (this.destroyed) return;
      unauthenticated(exc);
      this.summary.replaceChildren(el("span", { class: "alert", role: "alert" }, `could not read the catalog: ${exc.message}`));
      return;
    }
    if (this.destroyed || asked !== this.prefix) return;
    const rows = answer.data.map((c) => el("tr", { dataset: { collection: c.name } },
      el("th", { scope: "row" }, el("a", { href: collectionHref(c.name) }, c.name)),
      el("td", {}, `${c.producer.target} · ${c.producer.type}`),
      el("td", {}, c.producer.symbol),
      el("td", {}, c.producer.time_range),
      el("td", {}, time(c.producer.at)),
      el("td", { class: "num" }, count(c.writes))));
    if (more) this.body.append(...rows);
    else this.body.replaceChildren(...rows);
    this.after = answer.next_after || null;
    this.more.hidden = !this.after;
    const n = this.body.children.length;
    this.summary.textContent = n
      ? `${count(n)}${this.after ? "+" : ""} collection${n === 1 ? "" : "s"}${asked ? ` starting with ${asked}` : ""}`
      : asked ? `No collection starts with ${asked}.` : "The catalog is empty: a collection enters it when the step writing it finishes.";
  }

  destroy() {
    this.destroyed = true;
    window.clearTimeout(this.typing);
  }
}

/** The lineage: inputs → producer step → this collection → consumers. */
function lineage(info) {
  const inputs = info.producer.inputs || [];
  const consumers = info.consumers || [];
  const columns = [
    { title: "Inputs", nodes: inputs.map((name) => ({ kind: "input", lines: [name], title: name, href: collectionHref(name), data: { collection: name } })) },
    { title: "Producer step", nodes: [{ kind: "producer", lines: [`#${info.producer.step} ${info.producer.target}`, `${info.producer.type} · queue ${info.producer.queue_id.slice(0, 8)}`], title: `queue ${info.producer.queue_id}, step ${info.producer.step}`, href: queueHref(info.producer.queue_id), data: { queue: info.producer.queue_id, step: info.producer.step } }] },
    { title: "This collection", nodes: [{ kind: "self", lines: [info.name, `${count(info.producer.records_written)} records`], title: info.name, data: { collection: info.name } }] },
    { title: "Consumers", nodes: consumers.map((c) => ({ kind: "consumer", lines: [`#${c.step} ${c.target}`, `${c.type} · queue ${c.queue_id.slice(0, 8)}`], title: `queue ${c.queue_id}, step ${c.step}, ${time(c.at)}`, href: queueHref(c.queue_id), data: { queue: c.queue_id, step: c.step } })) },
  ];
  for (const column of columns) {
    if (column.nodes.length > MAX_NODES) {
      const rest = column.nodes.length - (MAX_NODES - 1);
      column.nodes = [...column.nodes.slice(0, MAX_NODES - 1), { kind: "more", lines: [`+ ${rest} more`], title: `${rest} more` }];
    }
    if (!column.nodes.length) column.nodes = [{ kind: "none", lines: [column.title === "Inputs" ? "no input" : "no consumer yet"], title: "" }];
  }
  const tallest = Math.max(...columns.map((c) => c.nodes.length));
  const height = HEAD + tallest * (NODE_H + NODE_GAP);
  const width = columns.length * COL_W + (columns.length - 1) * COL_GAP;
  const graph = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "lineage", role: "group", "aria-label": `Lineage of ${info.name}` },
    svg("defs", {}, svg("marker", { id: "lineage-arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow" }))));
  const centres = columns.map((column, i) => {
    const x = i * (COL_W + COL_GAP);
    graph.append(svg("text", { x: x + COL_W / 2, y: 16, "text-anchor": "middle", class: "col-title" }, column.title));
    const top = HEAD + ((tallest - column.nodes.length) * (NODE_H + NODE_GAP)) / 2;
    return column.nodes.map((n, j) => {
      const y = top + j * (NODE_H + NODE_GAP);
      const box = svg("g", { class: `lnode ${n.kind}`, ...Object.fromEntries(Object.entries(n.data || {}).map(([k, v]) => [`data-${k}`, v])) },
        svg("rect", { x, y, width: COL_W, height: NODE_H, rx: 6 }),
        svg("title", {}, n.title),
        ...n.lines.map((line, k) => svg("text", { x: x + 10, y: y + (n.lines.length === 1 ? NODE_H / 2 + 4 : 18 + k * 17), class: k ? "sub" : "main" }, clip(line, k ? 32 : 28))));
      graph.append(n.href ? svg("a", { href: n.href, "aria-label": `${n.lines.join(", ")}` }, box) : box);
      return { x, y: y + NODE_H / 2 };
    });
  });
  // edges: every input into the producer, the producer into this, this into every consumer
  const link = (a, b, kind) => graph.insertBefore(svg("path", {
    d: `M ${a.x + COL_W} ${a.y} C ${a.x + COL_W + COL_GAP / 2} ${a.y}, ${b.x - COL_GAP / 2} ${b.y}, ${b.x} ${b.y}`,
    class: `ledge ${kind}`, "marker-end": "url(#lineage-arrow)",
  }), graph.children[1]);
  const [ins, producer, self, outs] = centres;
  if (inputs.length) for (const a of ins) link(a, producer[0], "reads");
  link(producer[0], self[0], "writes");
  if (consumers.length) for (const b of outs) link(self[0], b, "read-by");
  return el("div", { class: "lineage-wrap" }, graph);
}

class CollectionPage {
  constructor(container, ctx, name) {
    this.ctx = ctx;
    this.name = name;
    this.body = el("div", {}, el("p", { class: "help" }, "reading…"));
    container.append(
      el("p", {}, el("a", { href: "#/collections" }, "← Collections")),
      el("h1", { class: "collection-name" }, name),
      this.body,
    );
    this.read();
  }

  async read() {
    let info;
    try {
      info = (await get(`collections/${encodeURIComponent(this.name)}`)).data;
    } catch (exc) {
      if (this.destroyed) return;
      unauthenticated(exc);
      const text = exc instanceof ApiError && exc.status === 404
        ? `The catalog holds no collection ${this.name}: a collection enters it when the step writing it finishes.`
        : `could not read the collection: ${exc.message}`;
      this.body.replaceChildren(el("p", { class: "alert", role: "alert" }, text));
      return;
    }
    if (this.destroyed) return;
    const p = info.producer;
    const fact = (term, ...value) => el("div", {}, el("dt", {}, term), el("dd", {}, ...value));
    this.body.replaceChildren(
      el("section", { class: "card", "aria-labelledby": "producer-title" },
        el("h2", { id: "producer-title" }, "Producer"),
        el("dl", { class: "facts producer" },
          fact("Queue", el("a", { href: queueHref(p.queue_id), class: "qid", title: p.queue_id, dataset: { queue: p.queue_id } }, p.queue_id.slice(0, 8))),
          fact("Step", `#${p.step} ${p.target}`),
          fact("Type", p.type),
          fact("Symbol", p.symbol),
          fact("Time range", p.time_range),
          fact("When", time(p.at)),
          fact("Records", count(p.records_written)),
          fact("Inputs", p.inputs.length ? p.inputs.flatMap((name, i) => [i ? ", " : "", el("a", { href: collectionHref(name) }, name)]) : "none"),
          fact("First written", time(info.first_written_at)),
          fact("Writes", count(info.writes)))),
      el("section", { class: "card", "aria-labelledby": "lineage-title" },
        el("h2", { id: "lineage-title" }, "Lineage"),
        lineage(info)),
      el("section", { class: "card", "aria-labelledby": "consumers-title" },
        el("h2", { id: "consumers-title" }, `Consumers (${info.consumers.length})`),
        info.consumers.length
          ? el("table", { class: "rates consumers", "aria-label": "Steps that read it, newest first" },
            el("thead", {}, el("tr", {}, ["Queue", "Step", "Type", "When"].map((h) => el("th", { scope: "col" }, h)))),
            el("tbody", {}, info.consumers.map((c) => el("tr", { dataset: { queue: c.queue_id, step: c.step } },
              el("td", {}, el("a", { href: queueHref(c.queue_id), class: "qid", title: c.queue_id }, c.queue_id.slice(0, 8))),
              el("td", {}, `#${c.step} ${c.target}`),
              el("td", {}, c.type),
              el("td", {}, time(c.at))))))
          : el("p", { class: "help" }, "No step has read it yet.")),
    );
  }

  destroy() {
    this.destroyed = true;
  }
}

export function mount(container, ctx, name) {
  return name ? new CollectionPage(container, ctx, name) : new CollectionList(container, ctx);
}
