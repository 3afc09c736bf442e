// The queue page's timeline (a Gantt): one row per step, one bar per attempt (launch to end,
// coloured by how it ended, its class and reason in its label), and a retrying step's wait
// up to its retry_at with a countdown. Plain DOM, positions in percent: it follows the width.

import { countdown, el, ms, runIntervals, span, time } from "../format.js";

const TICKS = 4;

/** Positions through the CSSOM: the page's CSP (style-src 'self') refuses style attributes. */
function at(node, left, width) {
  node.style.left = left;
  if (width !== undefined) node.style.width = width;
  return node;
}

/** What one attempt shows: its outcome class for colour, and words (never colour alone). */
function outcome(step, attempt, last) {
  if (!attempt.ended_at) return { kind: "running", words: "running" };
  if (attempt.class) return { kind: "failed", words: `${attempt.class}${attempt.reason ? `: ${attempt.reason}` : ""}` };
  if (last && ["error", "stopped"].includes(step.status)) return { kind: step.status, words: step.error_message || step.status };
  return { kind: "finished", words: "finished" };
}

/** The attempts of a step as [{attempt, from, to, kind, words}]. */
function bars(step, now) {
  const log = (step.attempts_log || []).filter((a) => a.started_at);
  if (!log.length) {
    return runIntervals(step, now).map(([from, to]) => {
      const running = !step.finished_at;
      return { attempt: 1, from, to, kind: running ? "running" : step.status, words: running ? "running" : step.status };
    });
  }
  return log.map((a, i) => ({
    attempt: a.attempt,
    from: ms(a.started_at),
    to: a.ended_at ? ms(a.ended_at) : now,
    ...outcome(step, a, i === log.length - 1),
  }));
}

export class Timeline {
  constructor(container, onSelect) {
    this.onSelect = onSelect;
    this.rows = el("div", { class: "gantt-rows", role: "list", "aria-label": "Steps and their attempts over time" });
    this.axis = el("div", { class: "gantt-axis", "aria-hidden": "true" });
    this.empty = el("p", { class: "help" }, "No step has launched yet.");
    container.replaceChildren(this.empty, this.rows, this.axis);
    this.key = null;
  }

  /** Redraws when anything it shows changed (a running bar grows with the clock). */
  update(queue, now = Date.now()) {
    const data = queue.steps.map((step) => ({ step, bars: bars(step, now) }));
    const starts = data.flatMap((d) => d.bars.map((b) => b.from));
    const waits = queue.steps.filter((s) => s.status === "retrying" && s.retry_at).map((s) => ms(s.retry_at));
    const running = data.some((d) => d.bars.some((b) => b.kind === "running"));
    const key = JSON.stringify([data.map((d) => [d.step.status, d.step.retry_at, d.bars]), running ? Math.floor(now / 1000) : 0]);
    if (key === this.key) return;
    this.key = key;
    this.empty.hidden = starts.length > 0;
    this.rows.hidden = this.axis.hidden = !starts.length;
    if (!starts.length) return;
    const from = Math.min(...starts);
    const ends = data.flatMap((d) => d.bars.map((b) => b.to));
    const to = Math.max(from + 1000, ...ends, ...waits.map((w) => Math.max(w, now)));
    const x = (t) => `${(((t - from) / (to - from)) * 100).toFixed(3)}%`;
    const w = (a, b) => `${Math.max(((b - a) / (to - from)) * 100, 0.4).toFixed(3)}%`;
    this.rows.replaceChildren(...data.map(({ step, bars: list }) => {
      const lane = el("div", { class: "gantt-lane" });
      for (const b of list) {
        const label = `attempt ${b.attempt}: ${time(new Date(b.from).toISOString())} for ${span((b.to - b.from) / 1000)}, ${b.words}`;
        lane.append(at(el("span", {
          class: `gantt-bar k-${b.kind}`, role: "img", "aria-label": label, title: label,
          dataset: { attempt: String(b.attempt), kind: b.kind },
        }), x(b.from), w(b.from, b.to)));
      }
      if (step.status === "retrying" && step.retry_at) {
        const last = list.length ? list[list.length - 1].to : now;
        const due = ms(step.retry_at);
        const text = `retry ${countdown(step.retry_at, now)}`;
        lane.append(
          at(el("span", { class: "gantt-wait", title: `next attempt at ${time(step.retry_at)}` }), x(last), w(last, Math.max(due, last))),
          el("span", { class: "gantt-note", dataset: { retryAt: step.retry_at } }, text),
        );
      } else if (!list.length) {
        lane.append(el("span", { class: "gantt-note muted" }, step.status));
      }
      return el(
        "div",
        { class: "gantt-row", role: "listitem", dataset: { step: String(step.index), status: step.status } },
        el("button", { type: "button", class: "gantt-label linklike", onclick: () => this.onSelect(step.index) },
          `#${step.index} ${step.target}`),
        lane,
      );
    }));
    const ticks = [];
    for (let i = 0; i <= TICKS; i += 1) {
      const t = from + ((to - from) * i) / TICKS;
      ticks.push(at(el("span", {}, time(new Date(t).toISOString()).slice(11, 19)), `${(i * 100) / TICKS}%`));
    }
    this.axis.replaceChildren(...ticks);
  }
}
