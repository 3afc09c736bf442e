// #/schedules/<name>: one schedule, what became of each of its ticks (the queues each started,
// or why it was skipped or missed), the actions the caller's role allows, and an edit form
// (PATCH /schedules/<name>: only the fields changed are sent). Also the actions
// the schedule list reuses, and #/schedules/new (the JSON request form).

import { ApiError, get, post, request } from "../api.js";
import { confirmAction, notify } from "../dialog.js";
import { badge, el, time } from "../format.js";
import { requestForm } from "./requestform.js";

const REFRESH_MS = 5000;
const RUNS = 100;

const path = (name, tail = "") => `schedules/${encodeURIComponent(name)}${tail}`;

/** Pause or resume, and delete: each confirmed first; then `after(action)`, where action is
 * the one that succeeded ("pause", "resume", "delete") or null when it failed. */
export function scheduleActions(schedule, ctx, after) {
  if (!ctx.session.can("operator")) return [];
  const act = async (action, ask, call) => {
    if (!(await confirmAction(ask))) return;
    try {
      notify((await call()).message);
      after(action);
    } catch (exc) {
      notify(exc.message, "error");
      after(null);
    }
  };
  const name = schedule.name;
  const toggle = schedule.paused
    ? el("button", {
      type: "button", class: "button small", dataset: { action: "resume" },
      onclick: () => act("resume", {
        title: `Resume ${name}?`,
        body: ["Ticks from now on start runs.", "The ticks of the pause are not caught up."],
        confirm: "Resume",
      }, () => post(path(name, "/resume"))),
    }, "Resume")
    : el("button", {
      type: "button", class: "button small", dataset: { action: "pause" },
      onclick: () => act("pause", {
        title: `Pause ${name}?`,
        body: ["No tick starts a run until it is resumed.", "Runs already started go on."],
        confirm: "Pause",
      }, () => post(path(name, "/pause"))),
    }, "Pause");
  const remove = el("button", {
    type: "button", class: "button small danger", dataset: { action: "delete" },
    onclick: () => act("delete", {
      title: `Delete ${name}?`,
      body: ["The schedule and the record of its ticks are deleted.", "The queues it started stay."],
      confirm: "Delete", danger: true,
    }, () => request("DELETE", path(name))),
  }, "Delete");
  return [toggle, remove];
}

export const stateBadge = (schedule) => badge(schedule.paused ? "paused" : "active");

export function policyText(schedule) {
  const deadline = schedule.starting_deadline_seconds;
  return `${schedule.concurrency_policy}, catch-up ${schedule.catchup}` + (deadline ? ` within ${deadline}s` : "");
}

function runRow(run) {
  const queues = run.queue_ids.map((id) => el("a", { href: `#/queues/${encodeURIComponent(id)}`, class: "qid", title: id }, id.slice(0, 8)));
  return el(
    "div",
    { role: "row", class: "srow runs", dataset: { outcome: run.outcome, scheduledFor: run.scheduled_for } },
    el("span", { role: "cell" }, time(run.scheduled_for)),
    el("span", { role: "cell" }, badge(run.outcome)),
    el("span", { role: "cell", class: "links" }, queues.length ? queues : "—"),
    el("span", { role: "cell", class: "reason" }, run.reason || ""),
    el("span", { role: "cell", class: "age" }, time(run.decided_at)),
  );
}

class ScheduleView {
  constructor(container, ctx, name) {
    this.ctx = ctx;
    this.name = name;
    this.head = el("div", { class: "queue-head" });
    this.actions = el("div", { class: "actions", role: "toolbar", "aria-label": "Schedule actions" });
    this.template = el("pre", { class: "json", tabindex: "0", "aria-label": "Template" });
    this.editor = el("section", { class: "card", "aria-labelledby": "edit-title", hidden: true });
    this.runs = el("div", { role: "rowgroup", class: "rows" });
    const header = el("div", { role: "row", class: "srow runs head" },
      ["Scheduled for", "Outcome", "Queues", "Reason", "Decided"].map((t) => el("span", { role: "columnheader" }, t)));
    container.append(
      el("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, el("a", { href: "#/schedules" }, "← Schedules")),
      this.head,
      this.actions,
      this.editor,
      el("section", { class: "card", "aria-labelledby": "template-title" },
        el("h2", { id: "template-title" }, "Template"), this.template),
      el("section", { class: "card", "aria-labelledby": "runs-title" },
        el("h2", { id: "runs-title" }, "Runs, newest first"),
        el("div", { role: "table", class: "schedules", "aria-labelledby": "runs-title" },
          el("div", { role: "rowgroup" }, header), this.runs)),
    );
    this.refresh();
    // Ticks are decided by whichever replica claims them, not announced on the socket: re-read.
    this.timer = window.setInterval(() => this.refresh(), REFRESH_MS);
  }

  async refresh() {
    let schedule;
    let runs;
    try {
      [schedule, runs] = await Promise.all([
        get(path(this.name)).then((a) => a.data),
        get(path(this.name, "/runs"), { limit: RUNS }).then((a) => a.data),
      ]);
    } catch (exc) {
      if (this.destroyed) return;
      if (exc instanceof ApiError && exc.status === 401) window.dispatchEvent(new CustomEvent("qm:unauthenticated"));
      this.head.replaceChildren(el("h1", {}, `Schedule ${this.name}`), el("p", { class: "alert", role: "alert" }, exc.message));
      this.actions.replaceChildren();
      return;
    }
    if (this.destroyed) return;
    const key = JSON.stringify(schedule);
    if (key !== this.key) {
      this.key = key;
      this.draw(schedule);
    }
    const runsKey = JSON.stringify(runs);
    if (runsKey !== this.runsKey) {
      this.runsKey = runsKey;
      this.runs.replaceChildren(...(runs.length ? runs.map(runRow) : [el("p", { class: "summary" }, "No tick has come yet.")]));
    }
  }

  draw(s) {
    const facts = [
      ["Cron", `${s.cron} (${s.timezone})`],
      ["Next run", s.paused ? "paused" : time(s.next_run)],
      ["Symbols", s.symbols.join(", ")],
      ["Policy", policyText(s)],
      ["Created", `${time(s.created_at)} by ${s.created_by || "—"}`],
      ["Changed", time(s.updated_at)],
    ];
    this.head.replaceChildren(
      el("div", { class: "title-row" }, el("h1", {}, `Schedule ${s.name}`), el("span", { id: "schedule-state" }, stateBadge(s))),
      el("dl", { class: "facts" }, facts.map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v)))),
    );
    this.template.textContent = JSON.stringify(s.template, null, 2);
    this.current = s;
    const buttons = scheduleActions(s, this.ctx, (action) =>
      action === "delete" ? this.ctx.navigate("#/schedules") : this.refresh());
    if (this.ctx.session.can("operator")) {
      buttons.unshift(el("button", {
        type: "button", class: "button small", dataset: { action: "edit" }, "aria-expanded": String(!this.editor.hidden),
        onclick: () => this.openEditor(s),
      }, "Edit"));
    }
    this.actions.replaceChildren(...buttons);
    this.actions.hidden = !buttons.length;
  }

  /** The edit form, filled with the schedule as stored; closed by Cancel or a save. */
  openEditor(s) {
    const field = (name, label, input, help) => el("div", { class: "field", dataset: { field: name } },
      el("label", { for: `edit-${name}` }, label), input,
      help ? el("span", { class: "help" }, help) : "",
      el("span", { class: "field-error", id: `edit-${name}-error`, role: "alert" }));
    const input = (name, value, attrs = {}) => el("input", { id: `edit-${name}`, name, value: value ?? "", "aria-describedby": `edit-${name}-error`, ...attrs });
    const choice = (name, value, options) => {
      const select = el("select", { id: `edit-${name}`, name, "aria-describedby": `edit-${name}-error` },
        options.map((o) => el("option", { value: o, selected: o === value }, o)));
      return select;
    };
    const template = el("textarea", { id: "edit-template", name: "template", rows: "6", spellcheck: "false", "aria-describedby": "edit-template-error" });
    template.value = JSON.stringify(s.template, null, 2);
    const save = el("button", { type: "submit", class: "button primary" }, "Save changes");
    const form = el("form", { class: "schedule-edit", novalidate: true },
      field("cron", "Cron", input("cron", s.cron, { autocomplete: "off" }), "5 fields, read in the timezone"),
      field("timezone", "Timezone", input("timezone", s.timezone), "IANA, e.g. Europe/London"),
      field("symbols", "Symbols", input("symbols", s.symbols.join(", ")), "comma-separated"),
      field("concurrency_policy", "Concurrency policy", choice("concurrency_policy", s.concurrency_policy, ["Allow", "Forbid", "Replace"])),
      field("catchup", "Catch-up", choice("catchup", s.catchup, ["none", "latest", "all"])),
      field("starting_deadline_seconds", "Starting deadline (s)", input("starting_deadline_seconds", s.starting_deadline_seconds, { inputmode: "numeric" }), "empty: none"),
      field("template", "Template (JSON)", template),
      el("p", { class: "alert", role: "alert", hidden: true, id: "edit-error" }),
      el("div", { class: "actions" },
        el("button", { type: "button", class: "button", onclick: () => this.closeEditor() }, "Cancel"), save),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.saveEdit(form, s, save);
    });
    this.editor.replaceChildren(el("h2", { id: "edit-title" }, `Edit ${s.name}`), form);
    this.editor.hidden = false;
    form.querySelector("input").focus();
  }

  closeEditor() {
    this.editor.hidden = true;
    this.editor.replaceChildren();
  }

  /** What changed, as a PATCH body; a field that cannot be read is named at once. */
  editBody(form, s) {
    const value = (name) => form.elements[name].value.trim();
    const body = {};
    const errors = [];
    if (value("cron") !== s.cron) body.cron = value("cron");
    if (value("timezone") !== s.timezone) body.timezone = value("timezone");
    const symbols = value("symbols").split(/[\s,]+/).filter(Boolean).map((x) => x.toUpperCase());
    if (symbols.join(",") !== s.symbols.join(",")) body.symbols = symbols;
    for (const name of ["concurrency_policy", "catchup"]) if (value(name) !== s[name]) body[name] = value(name);
    const deadline = value("starting_deadline_seconds");
    const wanted = deadline === "" ? null : Number(deadline);
    if (deadline !== "" && !Number.isInteger(wanted)) errors.push({ field: "starting_deadline_seconds", message: "a whole number of seconds, or empty" });
    else if (wanted !== (s.starting_deadline_seconds ?? null)) body.starting_deadline_seconds = wanted;
    try {
      const template = JSON.parse(form.elements.template.value);
      if (JSON.stringify(template) !== JSON.stringify(s.template)) body.template = template;
    } catch (exc) {
      errors.push({ field: "template", message: `not JSON: ${exc.message}` });
    }
    return { body, errors };
  }

  async saveEdit(form, s, save) {
    for (const node of form.querySelectorAll(".field-error")) node.textContent = "";
    const summary = form.querySelector("#edit-error");
    summary.hidden = true;
    const { body, errors } = this.editBody(form, s);
    if (!errors.length && !Object.keys(body).length) {
      summary.textContent = "Nothing changed.";
      summary.hidden = false;
      return;
    }
    const show = (list) => {
      for (const e of list) {
        const top = String(e.field || "").split(".")[0];
        const slot = form.querySelector(`#edit-${top}-error`);
        if (slot) slot.textContent = e.message;
        else {
          summary.textContent = `${e.field}: ${e.message}`;
          summary.hidden = false;
        }
      }
    };
    if (errors.length) return show(errors);
    save.disabled = true;
    try {
      const answer = await request("PATCH", path(s.name), { body });
      notify(`${answer.message}: ${Object.keys(body).join(", ")}`);
      this.closeEditor();
      this.key = null;
      await this.refresh();
    } catch (exc) {
      if (exc instanceof ApiError && exc.fieldErrors.length) show(exc.fieldErrors);
      else {
        summary.textContent = exc.message;
        summary.hidden = false;
      }
    } finally {
      save.disabled = false;
    }
  }

  destroy() {
    this.destroyed = true;
    window.clearInterval(this.timer);
  }
}

export function mount(container, ctx, name) {
  return new ScheduleView(container, ctx, name);
}

export function mountNew(container, ctx) {
  container.append(
    el("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, el("a", { href: "#/schedules" }, "← Schedules")),
    el("h1", {}, "New schedule"),
  );
  return requestForm(container, {
    label: "Schedule (JSON)",
    help: "name, a 5-field cron, an IANA timezone, symbols, and a template whose window (1d, 1w, 1M) "
      + "is the period before each tick; see the schedules guide for concurrency_policy and catchup.",
    path: "schedules",
    submit: "Create schedule",
    initial: "nightly",
    done: (answer) => ctx.navigate(`#/schedules/${encodeURIComponent(answer.data.name)}`),
  });
}
