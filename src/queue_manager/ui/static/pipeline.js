// How a step waits for the steps it depends on (docs/pipelines.md, "Order follows the data"):
// a connector starts together with the loader of its type; a streaming step (type ws_*,
// realtime_* or *_stream) once its producers run; a batch step once they finished.
// tests/ui check this against the planner (domain/planner.py, `edge`) for the examples.

export function isStreaming(type) {
  return type.startsWith("ws_") || type.startsWith("realtime_") || type.endsWith("_stream");
}

/** "together", "running" (streaming edge) or "finished" (batch edge). */
export function edgeKind(producer, consumer) {
  if (
    consumer.target === "arango-connector" &&
    producer.target === "loader-producer" &&
    producer.type === consumer.type
  ) {
    return "together";
  }
  return isStreaming(consumer.type) ? "running" : "finished";
}

export const EDGE_LABEL = {
  together: "starts together (topic)",
  running: "streaming: starts once it runs",
  finished: "batch: starts once it finished",
};

/** Layers by longest path from the roots: a step sits one layer after its deepest producer. */
export function layers(steps) {
  const depth = new Map();
  const visit = (step, seen = new Set()) => {
    if (depth.has(step.index)) return depth.get(step.index);
    if (seen.has(step.index)) return 0; // a cycle cannot be planned; never loop on bad data
    seen.add(step.index);
    let d = 0;
    for (const dep of step.depends_on) {
      const producer = steps[dep];
      if (producer) d = Math.max(d, visit(producer, seen) + 1);
    }
    depth.set(step.index, d);
    return d;
  };
  steps.forEach((step) => visit(step));
  const out = [];
  for (const step of steps) {
    const d = depth.get(step.index);
    (out[d] ||= []).push(step);
  }
  return out;
}
