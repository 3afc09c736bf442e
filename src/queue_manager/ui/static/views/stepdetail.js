// A step's parameters, and what it reads and writes: the topics and collections the planner
// named (domain/naming.py, domain/planner.py), each input linked to the step that produces it.

import { el } from "../format.js";

/** Named things a step reads and writes: [{kind: "topic"|"collection", name}]. */
export function dataOf(step) {
  const p = step.params || {};
  const inputs = [];
  const outputs = [];
  const collection = (name) => ({ kind: "collection", name });
  if (step.target === "loader-producer") {
    if (step.kafka_topic) outputs.push({ kind: "topic", name: step.kafka_topic });
  } else if (step.target === "arango-connector") {
    if (step.kafka_topic) inputs.push({ kind: "topic", name: step.kafka_topic });
    if (step.collection_name) outputs.push(collection(step.collection_name));
  } else {
    for (const name of p.collection_inputs || []) inputs.push(collection(name));
    for (const key of ["graph_collection", "source"]) if (p[key]) inputs.push(collection(p[key]));
    const out = new Set([step.collection_name, p.collection_output, p.model_output].filter(Boolean));
    for (const name of out) outputs.push(collection(name));
  }
  return { inputs, outputs };
}

/** The step that writes `item` (a topic's loader, a collection's writer), or null. */
function producerOf(queue, step, item) {
  return queue.steps.find((s) => s.index !== step.index && dataOf(s).outputs.some((o) => o.kind === item.kind && o.name === item.name)) || null;
}

function dataList(queue, step, items, label, onSelect, direction) {
  if (!items.length) return el("p", { class: "help" }, direction === "in" ? "reads nothing another step names" : "writes nothing it names");
  return el("ul", { class: "io-list", "aria-label": label }, items.map((item) => {
    const other = direction === "in"
      ? producerOf(queue, step, item)
      : queue.steps.find((s) => s.index !== step.index && dataOf(s).inputs.some((i) => i.kind === item.kind && i.name === item.name));
    return el("li", { dataset: { kind: item.kind, name: item.name } },
      el("span", { class: `io-kind ${item.kind}` }, item.kind),
      " ",
      el("code", { class: "io-name" }, item.name),
      other
        ? el("span", { class: "io-peer" }, direction === "in" ? " from " : " read by ",
          el("button", { type: "button", class: "linklike", onclick: () => onSelect(other.index) }, `#${other.index} ${other.target}`))
        : "");
  }));
}

/** The panel's section: parameters as sent to the job (JSON values shown as such), inputs, outputs. */
export function stepData(queue, step, onSelect) {
  const { inputs, outputs } = dataOf(step);
  const params = Object.entries(step.params || {});
  return el("div", { class: "step-data" },
    el("div", { class: "io" },
      el("section", { "aria-labelledby": "inputs-title" },
        el("h3", { id: "inputs-title" }, "Inputs"), dataList(queue, step, inputs, "Inputs", onSelect, "in")),
      el("section", { "aria-labelledby": "outputs-title" },
        el("h3", { id: "outputs-title" }, "Outputs"), dataList(queue, step, outputs, "Outputs", onSelect, "out"))),
    el("section", { "aria-labelledby": "params-title" },
      el("h3", { id: "params-title" }, "Parameters"),
      params.length
        ? el("dl", { class: "params" }, params.map(([k, v]) =>
          el("div", {}, el("dt", {}, k), el("dd", {}, el("code", {}, typeof v === "string" ? v : JSON.stringify(v))))))
        : el("p", { class: "help" }, "none")),
  );
}
