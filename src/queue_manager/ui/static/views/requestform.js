// A JSON request form: the request as JSON, with the documented examples one click away (read
// from the service's own OpenAPI document, so there is one copy of them). Each error — a JSON
// syntax error, or a field the 422 envelope names — is shown beside the line of that field.
// The start form, the backfill form and the new-schedule form are all this one form. With
// `preview` (the start form), the request's plan is drawn before it is sent: "Preview plan"
// draws it, and Start draws it first and sends nothing while it names an error.

import { ApiError, request } from "../api.js";
import { el } from "../format.js";
import { fieldLines, lineOf, parseError } from "../jsonpos.js";
import { drawPlan } from "./planpreview.js";

const LINE_PX = 20; // keep in step with .editor's line-height in style.css

let openapi = null;

async function examples(path) {
  openapi ||= readOpenapi().catch((exc) => {
    openapi = null;
    throw exc;
  });
  const operation = (await openapi).paths[`/${path}`].post.requestBody.content["application/json"];
  return Object.entries(operation.examples || {}).map(([name, e]) => ({ name, summary: e.summary, value: e.value }));
}

async function readOpenapi() {
  // /openapi.json is not an envelope: read it directly.
  const answer = await fetch(new URL("../openapi.json", window.location.href), { credentials: "same-origin" });
  if (!answer.ok) throw new ApiError(answer.status, "could not read the examples", null);
  return answer.json();
}

/**
 * @param {HTMLElement} container
 * @param {{label: string, help: string, path: string, submit: string, method?: string,
 *          initial?: string, preview?: string, done: (answer: object) => void}} form
 * `path` is the API path the body is sent to (`queues/start`) (its OpenAPI examples fill the picker); `initial`
 * names the example shown first; `preview` is the API path a body's plan is read from (`queues/plan`).
 */
export function requestForm(container, form) {
  const text = el("textarea", {
    id: "body", name: "body", wrap: "off", spellcheck: "false", autocomplete: "off",
    "aria-describedby": "body-help body-errors", rows: "22",
  });
  const gutter = el("div", { class: "gutter", "aria-hidden": "true" });
  const notes = el("div", { class: "notes", "aria-hidden": "true" });
  const errors = el("ul", { id: "body-errors", class: "errors", role: "alert", "aria-label": "Problems" });
  const editor = el("div", { class: "editor" }, gutter, text, notes);
  const submit = el("button", { type: "submit", class: "button primary" }, form.submit);
  const previewButton = form.preview
    ? el("button", { type: "button", class: "button", onclick: () => previewPlan() }, "Preview plan")
    : null;
  const planView = el("section", { class: "card plan", "aria-live": "polite", hidden: true });
  const picker = el("div", { class: "examples", role: "group", "aria-label": "Examples" }, el("span", {}, "Examples:"));
  const node = el(
    "form",
    { class: "card start", novalidate: true },
    el("label", { for: "body" }, form.label),
    el("p", { id: "body-help", class: "help" }, form.help),
    picker,
    editor,
    errors,
    el("div", { class: "actions" }, previewButton, submit),
  );
  container.append(node, planView);

  let marks = []; // [{line, field, message}]
  const drawGutter = () => {
    const count = Math.max(1, text.value.split("\n").length);
    const bad = new Set(marks.map((m) => m.line));
    if (gutter.childElementCount !== count || gutter.dataset.bad !== [...bad].join(",")) {
      gutter.dataset.bad = [...bad].join(",");
      gutter.replaceChildren(...Array.from({ length: count }, (_, i) =>
        el("span", { class: bad.has(i + 1) ? "bad" : "" }, String(i + 1))));
    }
    gutter.scrollTop = text.scrollTop;
    notes.scrollTop = text.scrollTop;
  };
  const show = (found) => {
    marks = found;
    notes.replaceChildren();
    const byLine = new Map();
    for (const m of found) byLine.set(m.line, [...(byLine.get(m.line) || []), m]);
    const lines = Math.max(1, text.value.split("\n").length);
    const spacer = el("div", { class: "spacer" });
    spacer.style.height = `${(lines + 2) * LINE_PX}px`;
    notes.append(spacer);
    for (const [line, group] of byLine) {
      const note = el("div", { class: "note", title: group.map((m) => m.message).join("; ") },
        group.map((m) => `${m.field}: ${m.message}`).join("; "));
      note.style.top = `${(line - 1) * LINE_PX}px`;
      notes.append(note);
    }
    errors.replaceChildren(...found.map((m) =>
      el("li", { class: "field-error", dataset: { field: m.field, line: String(m.line) } },
        el("button", { type: "button", class: "linklike", onclick: () => goTo(m.line) }, `line ${m.line}`),
        ` ${m.field}: ${m.message}`)));
    text.setAttribute("aria-invalid", found.length ? "true" : "false");
    drawGutter();
  };
  const goTo = (line) => {
    const lines = text.value.split("\n");
    const offset = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
    text.focus();
    text.setSelectionRange(offset, offset + (lines[line - 1] || "").length);
    text.scrollTop = Math.max(0, (line - 4) * LINE_PX);
    drawGutter();
  };
  text.addEventListener("input", () => {
    show([]);
    planView.hidden = true;
  });
  text.addEventListener("scroll", drawGutter);
  const setBody = (value) => {
    text.value = JSON.stringify(value, null, 2);
    show([]);
  };

  examples(form.path).then((found) => {
    for (const example of found) {
      picker.append(el("button", {
        type: "button", class: "button small", dataset: { example: example.name }, title: example.summary,
        onclick: () => setBody(example.value),
      }, example.summary || example.name));
    }
    if (!text.value) setBody((found.find((e) => e.name === form.initial) || found[0])?.value || {});
  }).catch((exc) => picker.append(el("span", { class: "field-error" }, exc.message)));

  // The body as an object, or null once its problem is shown.
  const readBody = () => {
    let body;
    try {
      body = JSON.parse(text.value);
    } catch (exc) {
      const { line, message } = parseError(text.value, exc);
      show([{ line, field: "JSON", message }]);
      goTo(line);
      return null;
    }
    if (body === null || typeof body !== "object" || Array.isArray(body)) {
      show([{ line: 1, field: "body", message: "must be a JSON object" }]);
      return null;
    }
    return body;
  };
  const showFieldErrors = (fieldErrors) => {
    const lines = fieldLines(text.value);
    const found = fieldErrors.map((e) => ({ line: lineOf(lines, e.field), field: e.field, message: e.message }));
    show(found);
    goTo(found[0].line);
  };
  // The plan of `body`, drawn with its errors marked in the editor; true when it has none.
  const planOf = async (body) => {
    const plan = (await request("POST", form.preview, { body })).data;
    drawPlan(planView, plan);
    if (plan.errors.length) showFieldErrors(plan.errors);
    else show([]);
    return plan.valid;
  };
  const failed = (exc) => {
    if (exc instanceof ApiError && exc.fieldErrors.length) showFieldErrors(exc.fieldErrors);
    else showFieldErrors([{ field: "request", message: exc.message }]);
  };
  const previewPlan = async () => {
    const body = readBody();
    if (!body) return;
    try {
      await planOf(body);
    } catch (exc) {
      failed(exc);
    }
  };

  node.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = readBody();
    if (!body) return;
    submit.disabled = true;
    try {
      if (form.preview && !(await planOf(body))) return;
      form.done(await request(form.method || "POST", form.path, { body }));
    } catch (exc) {
      failed(exc);
    } finally {
      submit.disabled = false;
    }
  });
  drawGutter();
  return { text, setBody };
}
