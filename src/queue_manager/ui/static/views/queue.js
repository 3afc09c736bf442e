// #/queues/<id>: the queue's DAG, live; its history; a step's log; the actions its state and
// the caller's role allow, each confirmed first.

import { ApiError, get, post } from "../api.js";
import { Dag } from "../dag.js";
import { confirmAction, notify } from "../dialog.js";
import { cancel, schedule } from "../frame.js";
import { attemptLabel, badge, count, countdown, duration, el, ended, ms, runSeconds, RUNNING_STEP, span, time, visible } from "../format.js";
import { applyUpdate, LiveFeed } from "../live.js";
import * as backfill from "./backfill.js";
import { stepData } from "./stepdetail.js";
import { Timeline } from "./timeline.js";
import { LogPanel } from "./logs.js";


const list = (indexes) => indexes.map((i) => `#${i}`).join(", ");

class QueueView {
  constructor(container, ctx, queueId) {
    this.ctx = ctx;
    this.id = queueId;
    this.queue = null;
    this.dag = null;
    this.selected = null;
    this.lastSeq = 0;
    this.events = [];
    this.destroyed = false;
    this.container = container;
    this.head = el("div", { class: "queue-head" });
    this.actions = el("div", { class: "actions", role: "toolbar", "aria-label": "Queue actions" });
    this.graph = el("div", { class: "graph-wrap" });
    this.gantt = el("div", { class: "gantt" });
    this.stepPanel = el("section", { class: "card step-panel", "aria-labelledby": "step-title" });
    this.timeline = el("ol", { class: "timeline", "aria-label": "History, oldest first" });
    container.append(
      el("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, el("a", { href: "#/queues" }, "← Queues")),
      this.head,
      this.actions,
      el("section", { class: "card", "aria-labelledby": "graph-title" },
        el("h2", { id: "graph-title" }, "Pipeline"), this.graph),
      el("section", { class: "card", "aria-labelledby": "gantt-title" },
        el("h2", { id: "gantt-title" }, "Timeline"), this.gantt),
      this.stepPanel,
      el("section", { class: "card", "aria-labelledby": "history-title" },
        el("h2", { id: "history-title" }, "History"), this.timeline),
    );
    this.feed = new LiveFeed({
      queueId,
      onMessages: (batch) => this.apply(batch),
      onResync: () => this.refresh(true),
    });
    this.fallback = window.setTimeout(() => this.queue || this.refresh(true), 1000);
    this.clock = window.setInterval(() => schedule("detail-clock", () => {
      this.drawHead();
      this.drawStep(); // a retrying step's countdown
      if (this.ganttView) this.ganttView.update(this.queue); // running bars grow, countdowns tick
      if (this.dag) this.dag.update(this.queue); // a streaming step's "last report … ago"
    }), 1000);
  }

  // -- state ---------------------------------------------------------------------------------

  async refresh(withEvents) {
    let queue;
    try {
      queue = (await get(`queues/${encodeURIComponent(this.id)}`)).data;
    } catch (exc) {
      if (this.destroyed) return;
      if (exc instanceof ApiError && exc.status === 401) window.dispatchEvent(new CustomEvent("qm:unauthenticated"));
      if (!this.queue) this.head.replaceChildren(el("h1", {}, "Queue not available"), el("p", { class: "alert" }, exc.message));
      return;
    }
    if (this.destroyed) return;
    if (!this.queue && queue.backfill) {
      this.handOver(queue);
      return;
    }
    if (this.queue && ms(queue.updated_at) < ms(this.queue.updated_at)) queue = this.queue;
    const first = !this.queue;
    this.queue = queue;
    if (first) {
      this.dag = new Dag(this.graph, queue, (index) => this.select(index));
      this.ganttView = new Timeline(this.gantt, (index) => this.select(index));
      this.select(this.defaultStep());
    }
    this.redraw();
    if (withEvents || first) this.loadEvents();
  }

  /** A backfill's parent has no steps of its own: the backfill view shows it. */
  handOver(parent) {
    this.destroy();
    this.container.replaceChildren();
    this.delegate = backfill.mount(this.container, this.ctx, parent);
  }

  defaultStep() {
    const steps = this.queue.steps;
    const failed = steps.find((s) => s.status === "error");
    const retrying = steps.find((s) => s.status === "retrying");
    const running = steps.find((s) => RUNNING_STEP.has(s.status));
    return (failed || retrying || running || steps[0]).index;
  }

  /** Socket messages patch the model; a status change also re-reads the rest (attempts...). */
  apply(batch) {
    if (!this.queue) return;
    let changed = false;
    for (const m of batch) {
      const change = applyUpdate(this.queue, m);
      if (!change) continue;
      changed ||= change.status || change.stepStatus;
      if (change.stepStatus && change.step === this.selected) this.logWanted = true;
    }
    schedule("detail", () => this.redraw());
    if (changed) {
      window.clearTimeout(this.pending);
      this.pending = window.setTimeout(() => this.refresh(true), 300);
    }
  }

  redraw() {
    if (!this.queue) return;
    this.dag.update(this.queue);
    this.ganttView.update(this.queue);
    this.drawHead();
    this.drawActions();
    this.drawStep();
    if (this.logWanted) {
      this.logWanted = false;
      if (!this.logPanel.following) this.openLog();
    }
  }

  // -- header and actions ---------------------------------------------------------------------

  drawHead() {
    const q = this.queue;
    if (!q) return;
    const facts = [
      ["Symbol", q.symbol],
      ["Time range", q.time_range],
      // docs/api.md "Records and duration": what the loaders wrote, each record once
      ["Records loaded", count(q.records_written)],
      ["Steps done", `${q.steps.filter((s) => s.status === "finished").length}/${q.steps.length}`],
      ["Created", `${time(q.created_at)} by ${q.created_by || "—"}`],
      // docs/api.md "Records and duration": from its first worker's start to its end, and
      // the time its steps' jobs ran (waits in error before a retry left out)
      ["Duration", duration(q.started_at, q.finished_at)],
      ["Ran for", span(runSeconds(q))],
    ];
    if (q.retries) facts.push(["Retries", String(q.retries)]);
    if (q.stopped_by) facts.push(["Stopped by", q.stopped_by]);
    const parts = [
      el("div", { class: "title-row" },
        el("h1", {}, "Queue ", el("span", { class: "qid", title: q.id }, q.id.slice(0, 8))),
        el("span", { id: "queue-status", dataset: { ended: String(ended(q)) } }, badge(q.status))),
      el("p", { class: "full-id" }, q.id),
      el("dl", { class: "facts" }, facts.map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v)))),
    ];
    if (q.resubmitted_from) {
      parts.push(el("p", {}, "Resubmitted from ",
        el("a", { href: `#/queues/${encodeURIComponent(q.resubmitted_from)}` }, q.resubmitted_from.slice(0, 8))));
    }
    if (q.parent) {
      parts.push(el("p", { class: "origin" }, "Part of backfill ",
        el("a", { href: `#/queues/${encodeURIComponent(q.parent)}`, class: "qid" }, q.parent.slice(0, 8))));
    }
    if (q.schedule) {
      parts.push(el("p", { class: "origin" }, "Run of schedule ",
        el("a", { href: `#/schedules/${encodeURIComponent(q.schedule)}` }, q.schedule),
        ` for ${time(q.scheduled_for)}`));
    }
    if (q.error_message) parts.push(el("p", { class: "alert", role: "alert", id: "queue-error" }, q.error_message));
    const key = JSON.stringify(facts) + q.status + q.error_message + q.resubmitted_from;
    if (this.headKey !== key) {
      this.headKey = key;
      this.head.replaceChildren(...parts);
    }
  }

  drawActions() {
    const q = this.queue;
    const allowed = this.ctx.session.can("operator");
    const buttons = [];
    const open = !ended(q);
    if (allowed && open && q.status !== "stopping") {
      buttons.push(el("button", { type: "button", class: "button", onclick: () => this.stop(false) }, "Stop"));
    }
    if (allowed && open) {
      buttons.push(el("button", { type: "button", class: "button danger", onclick: () => this.stop(true) }, "Force stop"));
    }
    if (allowed && ["error", "stopped"].includes(q.status)) {
      buttons.push(el("button", { type: "button", class: "button primary", onclick: () => this.retry() }, "Retry"));
    }
    if (allowed && !open) {
      buttons.push(el("button", { type: "button", class: "button", onclick: () => this.resubmit() }, "Resubmit"));
    }
    const key = `${allowed}:${q.status}`;
    if (this.actionsKey !== key) {
      this.actionsKey = key;
      this.actions.replaceChildren(...buttons);
      this.actions.hidden = !buttons.length;
    }
  }

  async act(ask, call, done) {
    if (!(await confirmAction(ask))) return;
    try {
      const answer = await call();
      notify(answer.message);
      if (done) done(answer);
      else this.refresh(true);
    } catch (exc) {
      notify(exc.message, "error");
    }
  }

  stop(force) {
    const q = this.queue;
    const running = q.steps.filter((s) => RUNNING_STEP.has(s.status)).map((s) => s.index);
    const pending = q.steps.filter((s) => s.status === "pending").map((s) => s.index);
    const short = q.id.slice(0, 8);
    const body = force
      ? [`Deletes the jobs of queue ${short} at once${running.length ? ` (running: steps ${list(running)})` : ""}, `
         + "without waiting for its workers to finish.", "Every step that has not ended ends stopped."]
      : [`Sends the stop command to the workers of queue ${short}${running.length ? ` (running: steps ${list(running)})` : ""}; `
         + "jobs still running after the grace period are deleted.",
         pending.length ? `Pending steps ${list(pending)} will not start. Every step ends stopped.` : "Every step ends stopped."];
    return this.act(
      { title: force ? `Force stop queue ${short}?` : `Stop queue ${short}?`, body, confirm: force ? "Force stop" : "Stop", danger: true },
      () => post("queues/stop", { params: { queue_id: q.id, force: force ? "true" : undefined } }),
    );
  }

  /** Retry what did not finish; with `fromStep`, that step and everything downstream of it too
   * (the same set the server re-runs: domain/state.py `retry`). */
  retry(fromStep) {
    const q = this.queue;
    const again = new Set(q.steps.filter((s) => s.status !== "finished").map((s) => s.index));
    const chosen = fromStep === undefined ? new Set() : downstream(q, fromStep);
    for (const i of chosen) again.add(i);
    const rerun = [...again].sort((a, b) => a - b);
    const kept = q.steps.filter((s) => !again.has(s.index)).map((s) => s.index);
    const named = (i) => `#${i} ${q.steps[i].target}`;
    const body = [
      fromStep === undefined
        ? `Runs again steps ${list(rerun)} of queue ${q.id.slice(0, 8)}, as new runs, in the usual order.`
        : `Runs again step #${fromStep} and what reads its output: ${[...chosen].sort((a, b) => a - b).map(named).join(", ")}`
          + `${rerun.length > chosen.size ? `; and what did not finish: ${rerun.filter((i) => !chosen.has(i)).map(named).join(", ")}` : ""}.`,
      kept.length ? `Finished steps ${list(kept)} are kept: not relaunched, their data reused.` : "Every step runs again.",
    ];
    const params = fromStep === undefined ? undefined : { from_step: String(fromStep) };
    return this.act(
      { title: fromStep === undefined ? "Retry this queue?" : `Re-run from step #${fromStep}?`, body, confirm: "Retry" },
      () => post(`queues/${encodeURIComponent(q.id)}/retry`, { params }),
    );
  }

  resubmit() {
    const q = this.queue;
    const body = [
      `Starts a new queue from the same request: ${q.symbol}, ${q.time_range}, ${q.steps.length} step${q.steps.length === 1 ? "" : "s"}.`,
      `Queue ${q.id.slice(0, 8)} stays as it is.`,
    ];
    return this.act(
      { title: "Resubmit as a new queue?", body, confirm: "Resubmit" },
      () => post(`queues/${encodeURIComponent(q.id)}/resubmit`),
      (answer) => this.ctx.navigate(`#/queues/${encodeURIComponent(answer.data.queue_id)}`),
    );
  }

  // -- the selected step and its log ---------------------------------------------------------

  select(index) {
    this.selected = index;
    this.dag.select(index);
    this.stepKey = null;
    this.stepPanel.replaceChildren();
    if (this.logPanel) this.logPanel.destroy();
    this.logPanel = new LogPanel(this.id, index); // views/logs.js: filters, search, follow, download
    this.stepFacts = el("div", { class: "step-facts" });
    this.stepActions = el("div", { class: "actions", role: "toolbar", "aria-label": "Step actions" });
    this.stepPanel.append(
      el("h2", { id: "step-title" }, `Step #${index} · ${this.queue.steps[index].target}`),
      this.stepFacts,
      this.stepActions,
      stepData(this.queue, this.queue.steps[index], (i) => this.select(i)),
      this.logPanel.node,
    );
    this.drawStep();
    this.openLog();
  }

  drawStep() {
    const step = this.queue && this.queue.steps[this.selected];
    if (!step) return;
    const facts = [
      ["Type", step.type],
      ["Status", step.status],
      ["Records written", count(step.records_written)],
      ["Loaded up to", time(step.last_loaded_timestamp)],
      ["Attempt", attemptLabel(step).long],
      ["Launched", time(step.launched_at || openAttempt(step))],
      ["Started", time(step.started_at || (RUNNING_STEP.has(step.status) && step.status !== "launching" ? openAttempt(step) : null))],
      ["Finished", time(step.finished_at)],
      ["Depends on", step.depends_on.length ? list(step.depends_on) : "—"],
      ["Job", step.job_name],
    ];
    if (step.warnings) facts.push(["Warnings", `${count(step.warnings)} (the worker went on)`]);
    if (step.retry) {
      const on = (step.retry.on || []).join(", ") || "nothing";
      facts.push(["Retry policy", `${step.retries || 0} of ${step.retry.limit} retries used · on ${on}`]);
    }
    const retrying = step.status === "retrying" && step.retry_at;
    const wait = retrying ? countdown(step.retry_at) : "";
    const log = step.attempts_log || [];
    const canRetry = this.ctx.session.can("operator") && ["error", "stopped"].includes(this.queue.status);
    const key = JSON.stringify(facts) + step.error_message + step.last_warning + wait + JSON.stringify(log) + canRetry;
    if (key === this.stepKey) return;
    this.stepKey = key;
    this.stepActions.replaceChildren(...(canRetry ? [el("button", {
      type: "button", class: "button", dataset: { action: "retry-from" }, onclick: () => this.retry(step.index),
    }, `Re-run from step #${step.index}`)] : []));
    this.stepActions.hidden = !canRetry;
    this.stepFacts.replaceChildren(
      el("dl", { class: "facts" }, facts.map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v)))),
      retrying
        ? el("p", { class: "retrying", role: "status", dataset: { retryAt: step.retry_at } },
            badge("retrying"), ` attempt ${step.attempts + 1} ${wait} (at ${time(step.retry_at)})`)
        : "",
      step.error_message ? el("p", { class: "alert", role: "alert" }, step.error_message) : "",
      step.warnings && step.last_warning
        ? el("p", { class: "warning", role: "status" }, `Latest warning: ${step.last_warning}`)
        : "",
      log.length > 1 || log.some((a) => a.class) ? attemptsTable(log) : "",
    );
  }

  openLog() {
    this.logPanel.open();
  }

  // -- history --------------------------------------------------------------------------------

  async loadEvents() {
    if (this.eventsBusy) {
      this.eventsAgain = true;
      return;
    }
    this.eventsBusy = true;
    try {
      let cursor = this.lastSeq ? String(this.lastSeq) : undefined;
      const fresh = [];
      for (;;) {
        const answer = await get(`queues/${encodeURIComponent(this.id)}/events`, { limit: 1000, cursor });
        fresh.push(...answer.data);
        if (!answer.next_cursor) break;
        cursor = answer.next_cursor;
      }
      const added = fresh.filter((e) => e.seq > this.lastSeq);
      if (added.length && !this.destroyed) {
        this.lastSeq = added[added.length - 1].seq;
        this.timeline.append(...added.map((e) => this.eventItem(e)));
        this.timeline.scrollTop = this.timeline.scrollHeight;
      }
    } catch (exc) {
      if (!this.events.length) this.timeline.replaceChildren(el("li", {}, `history not available: ${exc.message}`));
    } finally {
      this.eventsBusy = false;
      if (this.eventsAgain) {
        this.eventsAgain = false;
        this.loadEvents();
      }
    }
  }

  eventItem(e) {
    const step = e.step === null || e.step === undefined ? null : this.queue.steps[e.step];
    const subject = step ? `step #${e.step} ${step.target}` : "queue";
    let what;
    if (e.kind.endsWith(".status")) what = [`${e.from || "created"} → `, badge(e.to)];
    else if (e.kind === "command") what = [`command: ${e.to}`];
    else if (e.kind === "step.warning") what = ["warning (the worker went on)"];
    else what = [e.from || e.to ? `${e.from || "·"} → ${e.to}` : ""];
    return el(
      "li",
      { dataset: { seq: String(e.seq), kind: e.kind } },
      el("time", { datetime: e.at }, time(e.at)),
      el("span", { class: "what" }, el("strong", {}, subject), " ", ...what),
      e.message ? el("span", { class: "message" }, e.message) : "",
      el("span", { class: "actor" }, e.actor),
    );
  }

  destroy() {
    if (this.delegate) {
      this.delegate.destroy();
      return;
    }
    this.destroyed = true;
    this.feed.close();
    if (this.dag) this.dag.destroy();
    if (this.logPanel) this.logPanel.destroy();
    window.clearInterval(this.clock);
    window.clearTimeout(this.pending);
    window.clearTimeout(this.fallback);
    cancel("detail");
    cancel("detail-clock");
    cancel("log");
  }
}

/** The step and every step that depends on it, directly or not. */
function downstream(queue, index) {
  const out = new Set([index]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const s of queue.steps) {
      if (!out.has(s.index) && s.depends_on.some((d) => out.has(d))) {
        out.add(s.index);
        grew = true;
      }
    }
  }
  return out;
}

/** When the attempt running now began (a step whose status arrived before its start time). */
function openAttempt(step) {
  const log = step.attempts_log || [];
  const last = log[log.length - 1];
  return last && !last.ended_at ? last.started_at : null;
}

/** A step's attempts (docs/pipelines.md "Retry"): when each ran, how it ended, the next one's time. */
function attemptsTable(log) {
  const head = ["Attempt", "Started", "Ended", "Class", "Reason", "Next attempt at"];
  return el(
    "table",
    { class: "attempts", "aria-label": "Attempts" },
    el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))),
    el(
      "tbody",
      {},
      log.map((a) =>
        el(
          "tr",
          { dataset: { attempt: String(a.attempt), class: a.class || "" } },
          el("td", {}, `#${a.attempt}`),
          el("td", {}, time(a.started_at)),
          el("td", {}, a.ended_at ? time(a.ended_at) : "running"),
          el("td", {}, a.class ? el("span", { class: `badge c-${a.class}` }, a.class) : a.ended_at ? "—" : ""),
          el("td", { class: "reason" }, a.reason || ""),
          el("td", {}, a.retry_at ? time(a.retry_at) : ""),
        ),
      ),
    ),
  );
}

export function mount(container, ctx, queueId) {
  return new QueueView(container, ctx, queueId);
}
