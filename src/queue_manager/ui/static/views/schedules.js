// #/schedules: every schedule by name with its next run, state and policy; pause, resume and
// delete for operators. Schedules change rarely and are not announced on the socket: re-read.

import { ApiError, get } from "../api.js";
import { el, time } from "../format.js";
import { policyText, scheduleActions, stateBadge } from "./schedule.js";

const REFRESH_MS = 10000;

class ScheduleList {
  constructor(container, ctx) {
    this.ctx = ctx;
    this.summary = el("p", { class: "summary", "aria-live": "polite" }, "loading…");
    this.body = el("div", { role: "rowgroup", class: "rows" });
    const header = el("div", { role: "row", class: "srow head" },
      ["Schedule", "Cron", "Symbols", "State", "Next run", "Policy", ""].map((t) => el("span", { role: "columnheader" }, t)));
    const create = ctx.session.can("operator")
      ? el("a", { href: "#/schedules/new", class: "button primary" }, "New schedule")
      : null;
    container.append(
      el("div", { class: "title-row" }, el("h1", {}, "Schedules"), create),
      this.summary,
      el("div", { role: "table", class: "schedules", "aria-label": "Schedules, by name" },
        el("div", { role: "rowgroup" }, header), this.body),
    );
    this.refresh();
    this.timer = window.setInterval(() => this.refresh(), REFRESH_MS);
  }

  async refresh() {
    let found;
    try {
      found = (await get("schedules")).data;
    } catch (exc) {
      if (this.destroyed) return;
      if (exc instanceof ApiError && exc.status === 401) window.dispatchEvent(new CustomEvent("qm:unauthenticated"));
      this.summary.textContent = `could not read the schedules: ${exc.message}`;
      return;
    }
    if (this.destroyed) return;
    const key = JSON.stringify(found);
    if (key === this.key) return;
    this.key = key;
    this.body.replaceChildren(...found.map((s) => this.row(s)));
    this.summary.textContent = found.length
      ? `${found.length} schedule${found.length === 1 ? "" : "s"}`
      : "No schedules yet.";
  }

  row(s) {
    return el(
      "div",
      { role: "row", class: "srow", dataset: { schedule: s.name, paused: String(s.paused) } },
      el("span", { role: "cell" }, el("a", { href: `#/schedules/${encodeURIComponent(s.name)}` }, s.name)),
      el("span", { role: "cell", class: "cron", title: s.timezone }, `${s.cron} `, el("span", { class: "tz" }, s.timezone)),
      el("span", { role: "cell", class: "symbols" }, s.symbols.join(", ")),
      el("span", { role: "cell" }, stateBadge(s)),
      el("span", { role: "cell", class: "next" }, s.paused ? "—" : time(s.next_run)),
      el("span", { role: "cell", class: "policy" }, policyText(s)),
      el("span", { role: "cell", class: "row-actions" }, scheduleActions(s, this.ctx, () => {
        this.key = null;
        this.refresh();
      })),
    );
  }

  destroy() {
    this.destroyed = true;
    window.clearInterval(this.timer);
  }
}

export function mount(container, ctx) {
  return new ScheduleList(container, ctx);
}
