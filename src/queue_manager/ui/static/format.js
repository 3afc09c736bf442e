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

/** A step's latest attempt, counted the way its retry policy counts (docs/dashboard.md): the
 * first run is attempt 1, each retry by the policy one more, out of its limit + 1. A retry by
 * hand starts the count afresh, as it starts the policy afresh. */
export function attemptLabel(step) {
  const limit = step.retry ? step.retry.limit : 0;
  const n = Math.min((step.retries || 0) + 1, limit + 1);
  let allowed;
  if (limit) allowed = `${limit} ${limit === 1 ? "retry" : "retries"} allowed`;
  else if (step.max_retries) allowed = `no retry policy; its job restarts up to ${step.max_retries}×`;
  else allowed = "no retry policy";
  // `run` counts the step's jobs (its policy's retries and the queue's retries by hand): more
  // runs than policy retries means the queue was retried by hand and this step ran again.
  const run = step.run || 0;
  const again = run > (step.retries || 0) ? ` · run ${run + 1}` : "";
  return {
    short: `attempt ${n} of ${limit + 1}${again}`,
    long: `attempt ${n} of ${limit + 1} (${allowed})${again ? `${again}, run again by a retry of the queue` : ""}`,
  };
}

/** The intervals a step ran: its attempts (launch to end, or to `now` while one runs); a step
 * stored without attempts falls back to its start and end. */
export function runIntervals(step, now = Date.now()) {
  const log = step.attempts_log || [];
  const spans = log
    .filter((a) => a.started_at)
    .map((a) => [ms(a.started_at), a.ended_at ? ms(a.ended_at) : now]);
  if (!spans.length) {
    const from = ms(step.launched_at || step.started_at);
    if (!Number.isNaN(from)) spans.push([from, step.finished_at ? ms(step.finished_at) : now]);
  }
  return spans.filter(([a, b]) => !Number.isNaN(a) && !Number.isNaN(b) && b >= a);
}

/** How long a queue's steps ran (docs/api.md "Records and duration", "Ran for" on the page):
 * the union of its steps' attempts, each from its launch (not before the queue's started_at) to
 * its end. Unlike its duration
 * (started_at → finished_at), waits are not in it: for a retry's backoff, or in `error` before
 * someone retried it. Null before its first worker started. */
export function runSeconds(queue, now = Date.now()) {
  // Counted from the queue's start (its first worker's), as its duration is: the launch before
  // that is not its work yet, so a queue that ran straight through ran for its duration.
  const from0 = ms(queue.started_at);
  if (Number.isNaN(from0)) return null;
  const spans = (queue.steps || []).flatMap((s) => runIntervals(s, now))
    .map(([a, b]) => [Math.max(a, from0), b])
    .filter(([a, b]) => b >= a)
    .sort((a, b) => a[0] - b[0]);
  if (!spans.length) return null;
  let total = 0;
  let [from, to] = spans[0];
  for (const [a, b] of spans.slice(1)) {
    if (a > to) {
      total += to - from;
      [from, to] = [a, b];
    } else if (b > to) to = b;
  }
  return (total + (to - from)) / 1000;
}
