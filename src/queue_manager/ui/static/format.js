// Small formatting helpers and a DOM builder that never parses HTML (no injection).

/** el("div", {class: "x", dataset: {a: 1}, onclick: f}, child, "text", ...) */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const numbers = new Intl.NumberFormat("en-US");
export const count = (n) => numbers.format(n || 0);

export function span(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export const ms = (iso) => (iso ? Date.parse(iso) : NaN);

export function age(iso, now = Date.now()) {
  const at = ms(iso);
  return Number.isNaN(at) ? "—" : `${span((now - at) / 1000)} ago`;
}

/** From started_at to finished_at, or to now while it runs. */
export function duration(started, finished, now = Date.now()) {
  const from = ms(started);
  if (Number.isNaN(from)) return "—";
  const to = finished ? ms(finished) : now;
  return span((to - from) / 1000);
}

export function time(iso) {
  if (!iso) return "—";
  const at = new Date(iso);
  return Number.isNaN(at.getTime()) ? iso : at.toISOString().replace("T", " ").slice(0, 19) + "Z";
}

export const QUEUE_STATUSES = ["queued", "pending", "loading", "finished", "stopping", "stopped", "error"];
export const RUNNING_STEP = new Set(["launching", "started", "loading"]);
export const ENDED_STEP = new Set(["finished", "error", "stopped", "skipped"]);

/** A status badge: text and colour (never colour alone). */
export function badge(status) {
  return el("span", { class: `badge s-${status}`, dataset: { status } }, status);
}
