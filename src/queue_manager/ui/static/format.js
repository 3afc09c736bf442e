// Small formatting helpers and a DOM builder that never parses HTML (no injection).

// Characters a page would hide or act on rather than show: C0 and C1 controls (an ESC of a
// terminal sequence, a bell), DEL, and the Unicode controls that reorder text or break lines.
// Newlines and tabs stay (logs); a carriage return is shown as \r.
const HIDDEN = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const SHORT = { "\r": "\\r" };

/** Text from outside (a worker, a client) with its control characters shown as escapes: `\x1b`. */
export function visible(text) {
  return String(text).replace(HIDDEN, (c) => {
    if (SHORT[c]) return SHORT[c];
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/** el("div", {class: "x", dataset: {a: 1}, onclick: f}, child, "text", ...); every text goes
 * through `visible` and into a text node, never HTML. */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = visible(value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(visible(child)));
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
/** The statuses a queue ends in (the server's terminal ones, domain/models.py; tests/ui check
 * they match): the one list every view asks, through `ended`. */
export const ENDED_QUEUE = new Set(["finished", "stopped", "error"]);
export const ended = (queue) => ENDED_QUEUE.has(queue.status);
export const RUNNING_STEP = new Set(["launching", "started", "loading"]);
/** Neither running nor ended: a step that failed and waits for its `retry_at`. */
export const RETRYING_STEP = "retrying";

/** "in 6s" until `iso`, "due now" once it has come. */
export function countdown(iso, now = Date.now()) {
  const at = ms(iso);
  if (Number.isNaN(at)) return "—";
  return at > now ? `in ${span(Math.ceil((at - now) / 1000))}` : "due now";
}
export const ENDED_STEP = new Set(["finished", "error", "stopped", "skipped"]);

/** A status badge: text and colour (never colour alone). */
export function badge(status) {
  return el("span", { class: `badge s-${status}`, dataset: { status } }, status);
}
