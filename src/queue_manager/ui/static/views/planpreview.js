// The plan of a start request, drawn before it is sent (POST /queues/plan, docs/api.md): the
// steps in the order they can start (one row per wave), what each waits for and why (its
// loader's topic, a collection it reads, depends_on), the collections it reads and writes, and
// each error of the request beside the step it names.

import { el } from "../format.js";

const STARTS = {
  together: "starts together with",
  running: "starts once running:",
  finished: "starts once finished:",
};
const WHY = { topic: "topic", collection: "reads", depends_on: "depends_on" };

function stepOf(field) {
  const match = /^requests\.(\d+)\./.exec(field);
  return match ? Number(match[1]) : null;
}

function edgeText(edge) {
  const names = (edge.names || []).join(", ");
  return `${STARTS[edge.starts] || edge.starts} step ${edge.step} (${WHY[edge.reason] || edge.reason}${names ? ` ${names}` : ""})`;
}

function card(step, errors) {
  const external = new Set(step.external_inputs || []);
  return el("li", { class: `plan-step${errors.length ? " has-error" : ""}`, dataset: { step: String(step.index) } },
    el("div", { class: "plan-title" }, el("strong", {}, `#${step.index} ${step.target}`), ` ${step.type}`),
    el("ul", { class: "plan-after" },
      step.after.length ? step.after.map((e) => el("li", {}, edgeText(e))) : el("li", { class: "muted" }, "starts first")),
    step.reads.length || step.writes.length ? el("ul", { class: "plan-collections" },
      step.reads.map((name) => el("li", {}, "reads ", el("code", {}, name), external.has(name) ? " (external)" : "")),
      step.writes.map((name) => el("li", {}, "writes ", el("code", {}, name)))) : null,
    errors.map((e) => el("p", { class: "field-error plan-error" }, `${e.field}: ${e.message}`)));
}

/** Draw `plan` into `container` (replacing what was there). */
export function drawPlan(container, plan) {
  const byStep = new Map();
  const general = [];
  for (const e of plan.errors) {
    const index = stepOf(e.field);
    if (index === null) general.push(e);
    else byStep.set(index, [...(byStep.get(index) || []), e]);
  }
  const waves = [];
  for (const step of plan.steps) (waves[step.wave] ||= []).push(step);
  const status = plan.valid
    ? el("p", { class: "plan-status ok" }, `Plan: ${plan.steps.length} step(s), no errors.`)
    : el("p", { class: "plan-status bad" }, `Plan: ${plan.errors.length} error(s); nothing will start until they are fixed.`);
  // replaceChildren takes nodes only: the lists below are spread flat, the absent left out
  const parts = [
    el("h2", {}, "Plan preview"),
    status,
    general.map((e) => el("p", { class: "field-error plan-error" }, `${e.field}: ${e.message}`)),
    waves.filter(Boolean).map((wave, n) => el("section", { class: "plan-wave", "aria-label": `Wave ${n}` },
      el("h3", {}, n === 0 ? "Starts first" : `Then (wave ${n})`),
      el("ol", { class: "plan-steps" }, wave.map((step) => card(step, byStep.get(step.index) || []))))),
    plan.collections.length
      ? el("p", { class: "help" }, "Writes: ", plan.collections.flatMap((name, i) => [i ? ", " : "", el("code", {}, name)]))
      : null,
  ];
  container.replaceChildren(...parts.flat().filter(Boolean));
  container.hidden = false;
}
