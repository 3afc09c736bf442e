// The pipeline as a DAG: steps as nodes (HTML, focusable, coloured by status, with text),
// dependencies as SVG edges, told apart by kind (together / streaming / batch).
// Left to right on a wide screen, top to bottom on a narrow one.

import { age, attemptLabel, count, el, ms, visible } from "./format.js";
import { EDGE_LABEL, edgeKind, isStreaming, layers } from "./pipeline.js";

const SVG = "http://www.w3.org/2000/svg";
/** The least node height; a node whose text wraps (a narrow screen) is made taller, never cut. */
const NODE_H = 124;
/** How far back a streaming step's records/s looks. */
const RATE_WINDOW_MS = 10000;

/** A long identifier may break after `_` or `.` (a data type, a topic), never mid-word. */
function breakable(text) {
  return String(text).split(/(?<=[_.])/).flatMap((part, i) => (i ? [el("wbr"), part] : [part]));
}
const GAP = { wide: [72, 18], narrow: [14, 40] };

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

/** Share of the queue's time range loaded so far (0..1), or null before the first record. */
export function progress(queue, step) {
  const at = ms(step.last_loaded_timestamp);
  const from = ms(queue.start_time);
  const to = ms(queue.end_time);
  if (Number.isNaN(at) || Number.isNaN(from) || !(to > from)) return null;
  return Math.min(1, Math.max(0, (at - from) / (to - from)));
}

const RUNNING_ACTIVE = new Set(["started", "loading"]);

/** "120 rec/s · last report 3s ago": records/s over the last RATE_WINDOW_MS of what this page
 * saw, and how long since the count last moved. */
function activity(node, step, now = Date.now()) {
  const samples = node.samples;
  const records = step.records_written || 0;
  const last = samples[samples.length - 1];
  if (!last || last.records !== records) samples.push({ at: now, records });
  while (samples.length > 2 && now - samples[1].at > RATE_WINDOW_MS) samples.shift();
  if (!RUNNING_ACTIVE.has(step.status)) return step.status === "finished" ? "stream ended" : "no activity";
  const first = samples[0];
  const latest = samples[samples.length - 1];
  const rate = latest.at > first.at ? ((latest.records - first.records) * 1000) / (now - first.at) : 0;
  const heard = samples.length > 1 ? latest.at : ms(step.last_loaded_timestamp);
  return `${count(Math.round(rate))} rec/s · last report ${Number.isNaN(heard) ? "—" : age(new Date(heard).toISOString(), now)}`;
}

export class Dag {
  constructor(container, queue, onSelect) {
    this.container = container;
    this.onSelect = onSelect;
    this.queue = queue;
    this.nodes = new Map();
    this.selected = null;
    this.root = el("div", { class: "dag", role: "group", "aria-label": "Pipeline graph" });
    this.edges = svg("svg", { class: "edges", "aria-hidden": "true" });
    this.root.append(this.edges);
    for (const step of queue.steps) this.root.append(this.node(step));
    container.replaceChildren(this.root, this.legend());
    this.width = 0;
    this.observer = new ResizeObserver(() => this.layout());
    this.observer.observe(container);
    this.update(queue);
    this.layout();
  }

  legend() {
    const kinds = new Set();
    for (const step of this.queue.steps) {
      for (const dep of step.depends_on) kinds.add(edgeKind(this.queue.steps[dep], step));
    }
    if (!kinds.size) return el("span");
    return el(
      "ul",
      { class: "legend", "aria-label": "Edge kinds" },
      [...kinds].map((kind) =>
        el("li", {}, el("span", { class: `swatch ${kind}`, "aria-hidden": "true" }), EDGE_LABEL[kind]),
      ),
    );
  }

  node(step) {
    const parts = {
      status: el("span", { class: "badge" }),
      records: el("span", { class: "records" }),
      bar: el("span", { class: "bar" }),
      meter: null,
      attempts: el("span", { class: "attempts" }),
      error: el("span", { class: "error-text" }),
    };
    // A streaming step has no end to fill a bar towards: it shows its activity instead.
    parts.meter = isStreaming(step.type)
      ? el("span", { class: "activity", role: "status" })
      : el("span", { class: "meter", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100" }, parts.bar);
    const button = el(
      "button",
      {
        type: "button",
        class: "node",
        dataset: { step: String(step.index) },
        "aria-pressed": "false",
        onclick: () => this.onSelect(step.index),
      },
      el("span", { class: "node-head" }, el("span", { class: "index" }, `#${step.index}`), " ", step.target),
      el("span", { class: "type" }, breakable(step.type)),
      el("span", { class: "row" }, parts.status, parts.records),
      parts.meter,
      parts.attempts,
      parts.error,
    );
    this.nodes.set(step.index, { button, parts, text: {}, samples: [] });
    return button;
  }

  /** Patch what changed: text and attributes only, never a rebuild. */
  update(queue) {
    this.queue = queue;
    let wrapped = false;
    for (const step of queue.steps) {
      const node = this.nodes.get(step.index);
      if (!node) continue;
      const { button, parts, text } = node;
      const set = (key, target, value) => {
        if (text[key] !== value) {
          text[key] = value;
          target.textContent = visible(value);
        }
      };
      if (button.dataset.status !== step.status) {
        button.dataset.status = step.status;
        parts.status.className = `badge s-${step.status}`;
        parts.status.dataset.status = step.status;
      }
      set("status", parts.status, step.status);
      set("records", parts.records, `${count(step.records_written)} records`);
      if (parts.meter.classList.contains("activity")) {
        set("activity", parts.meter, activity(node, step));
        parts.meter.dataset.live = String(RUNNING_ACTIVE.has(step.status));
      }
      const share = progress(queue, step);
      const percent = share === null ? 0 : Math.round(share * 100);
      if (!parts.meter.classList.contains("activity") && text.percent !== percent) {
        text.percent = percent;
        parts.bar.style.width = `${percent}%`;
        parts.meter.setAttribute("aria-valuenow", String(percent));
        parts.meter.setAttribute(
          "aria-label",
          share === null ? "nothing loaded yet" : `${percent}% of the time range loaded`,
        );
        parts.meter.title = step.last_loaded_timestamp
          ? `loaded up to ${step.last_loaded_timestamp}`
          : "nothing loaded yet";
      }
      // Retries by its policy are attempts (docs/pipelines.md "Retry"); max_retries restarts are
      // immediate restarts of one attempt's job (the long label, in its title, says which).
      const label = attemptLabel(step);
      set("attempts", parts.attempts, label.short);
      parts.attempts.title = label.long;
      if (text.error !== (step.error_message || "")) wrapped = true;
      set("error", parts.error, step.error_message || "");
      button.setAttribute(
        "aria-label",
        `Step ${step.index} ${step.target} ${step.type}: ${step.status}, ${count(step.records_written)} records` +
          (step.error_message ? `, error: ${visible(step.error_message)}` : ""),
      );
    }
    // A text that now wraps onto more lines (an error arrived): make every node tall enough.
    if (wrapped && this.width && [...this.nodes.values()].some(({ button }) => button.scrollHeight > button.clientHeight + 1)) {
      this.width = 0;
      this.layout();
    }
  }

  select(index) {
    this.selected = index;
    for (const [i, node] of this.nodes) node.button.setAttribute("aria-pressed", String(i === index));
  }

  layout() {
    const width = this.container.clientWidth;
    if (!width || width === this.width) return;
    this.width = width;
    const columns = layers(this.queue.steps);
    const widest = Math.max(...columns.map((c) => c.length));
    const horizontal = width >= 760;
    const [gx, gy] = horizontal ? GAP.wide : GAP.narrow;
    let nodeW;
    if (horizontal) {
      nodeW = Math.max(170, Math.min(220, (width - (columns.length - 1) * gx) / columns.length));
    } else {
      nodeW = Math.max(150, Math.min(260, (width - (widest - 1) * gx) / widest));
    }
    const nodeH = this.measure(nodeW);
    const place = new Map();
    columns.forEach((column, l) => {
      column.forEach((step, i) => {
        if (horizontal) {
          const offset = ((widest - column.length) * (nodeH + gy)) / 2;
          place.set(step.index, { x: l * (nodeW + gx), y: offset + i * (nodeH + gy) });
        } else {
          const offset = Math.max(0, ((widest - column.length) * (nodeW + gx)) / 2);
          place.set(step.index, { x: offset + i * (nodeW + gx), y: l * (nodeH + gy) });
        }
      });
    });
    const totalW = horizontal
      ? columns.length * nodeW + (columns.length - 1) * gx
      : widest * nodeW + (widest - 1) * gx;
    const totalH = horizontal
      ? widest * nodeH + (widest - 1) * gy
      : columns.length * nodeH + (columns.length - 1) * gy;
    this.root.style.width = `${totalW}px`;
    this.root.style.height = `${totalH}px`;
    this.root.dataset.orientation = horizontal ? "horizontal" : "vertical";
    for (const [index, { x, y }] of place) {
      const { button } = this.nodes.get(index);
      Object.assign(button.style, { left: `${x}px`, top: `${y}px`, width: `${nodeW}px`, height: `${nodeH}px` });
    }
    this.edges.setAttribute("width", String(totalW));
    this.edges.setAttribute("height", String(totalH));
    this.edges.setAttribute("viewBox", `0 0 ${totalW} ${totalH}`);
    const defs = svg("defs", {});
    for (const kind of ["together", "running", "finished"]) {
      const marker = svg("marker", {
        id: `arrow-${kind}`, viewBox: "0 0 10 10", refX: "9", refY: "5",
        markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse",
      });
      marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: `arrow ${kind}` }));
      defs.append(marker);
    }
    const paths = [defs];
    for (const step of this.queue.steps) {
      for (const dep of step.depends_on) {
        const producer = this.queue.steps[dep];
        const a = place.get(dep);
        const b = place.get(step.index);
        if (!producer || !a || !b) continue;
        const kind = edgeKind(producer, step);
        let d;
        if (horizontal) {
          const [x1, y1, x2, y2] = [a.x + nodeW, a.y + nodeH / 2, b.x - 2, b.y + nodeH / 2];
          const bend = (x2 - x1) / 2;
          d = `M ${x1} ${y1} C ${x1 + bend} ${y1}, ${x2 - bend} ${y2}, ${x2} ${y2}`;
        } else {
          const [x1, y1, x2, y2] = [a.x + nodeW / 2, a.y + nodeH, b.x + nodeW / 2, b.y - 2];
          const bend = (y2 - y1) / 2;
          d = `M ${x1} ${y1} C ${x1} ${y1 + bend}, ${x2} ${y2 - bend}, ${x2} ${y2}`;
        }
        const path = svg("path", { d, class: `edge ${kind}`, "marker-end": `url(#arrow-${kind})` });
        path.dataset.from = String(dep);
        path.dataset.to = String(step.index);
        path.dataset.kind = kind;
        paths.push(path);
      }
    }
    this.edges.replaceChildren(...paths);
  }

  /** The height every node gets at width `nodeW`: the tallest one's text, wrapped, or NODE_H. */
  measure(nodeW) {
    let tallest = NODE_H;
    for (const { button } of this.nodes.values()) {
      Object.assign(button.style, { width: `${nodeW}px`, height: "auto" });
      tallest = Math.max(tallest, Math.ceil(button.getBoundingClientRect().height));
    }
    return tallest;
  }

  destroy() {
    this.observer.disconnect();
  }
}
