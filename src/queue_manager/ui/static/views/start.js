// #/start: start one queue, or (?kind=backfill) a backfill — a parent and one child queue per
// symbol and chunk of a long time range. Both are the same JSON request form.

import { el } from "../format.js";
import { requestForm } from "./requestform.js";

const KINDS = {
  queue: {
    title: "Start a queue",
    label: "Start request (JSON)",
    help: "The single form {symbol, type, time_range} or a pipeline {symbol, time_range, requests: [...]}; "
      + "see the pipelines guide for every field.",
    path: "queues/start",
    submit: "Start",
    initial: "single",
    preview: "queues/plan",
  },
  backfill: {
    title: "Start a backfill",
    label: "Backfill request (JSON)",
    help: "A start request (either form) with symbols: [...] instead of symbol, a long time_range, "
      + "chunk (day, week or month) and max_parallel (children running at once); see the schedules guide.",
    path: "queues/backfill",
    submit: "Start backfill",
    initial: "year",
  },
};

export function mount(container, ctx) {
  const kind = KINDS[ctx.params.get("kind")] ? ctx.params.get("kind") : "queue";
  const chosen = KINDS[kind];
  const tabs = el("nav", { class: "tabs", "aria-label": "What to start" },
    Object.entries(KINDS).map(([name, k]) => el("a", {
      href: name === "queue" ? "#/start" : `#/start?kind=${name}`,
      "aria-current": name === kind ? "page" : null,
    }, name === "queue" ? "One queue" : "Backfill")));
  container.append(el("h1", {}, chosen.title), tabs);
  return requestForm(container, {
    ...chosen,
    done: (answer) => ctx.navigate(`#/queues/${encodeURIComponent(answer.data.queue_id)}`),
  });
}
