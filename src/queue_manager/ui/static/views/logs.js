// A step's log, read: one row per line (time, level, message, then its fields), filtered by minimum level and by
// text on the service (GET .../logs?format=json&level=&grep=), followed while the step runs, and the raw log to
// download. A line that is no JSON (a traceback) is shown as written, its level unknown.

import { ApiError, url } from "../api.js";
import { cancel, schedule } from "../frame.js";
import { el, visible } from "../format.js";

const TAIL = 200;
const KEEP = 2000;
const LEVELS = ["debug", "info", "warning", "error", "critical"];

let panels = 0;

/** `2024-06-01T12:00:01.123456Z` as `12:00:01.123`: the day is the step's. */
function shortTime(iso) {
  const m = /T(\d\d:\d\d:\d\d)(\.\d{1,3})?/.exec(iso || "");
  return m ? m[1] + (m[2] || "") : iso || "";
}

function fieldText(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

export class LogPanel {
  constructor(queueId, index) {
    this.queueId = queueId;
    this.index = index;
    this.id = ++panels;
    this.following = false;
    this.pending = [];
    this.level = el("select", { id: `log-level-${this.id}`, name: "level", class: "log-level" },
      el("option", { value: "" }, "any level"),
      LEVELS.map((l) => el("option", { value: l }, `${l} and above`)));
    this.search = el("input", {
      id: `log-search-${this.id}`, name: "grep", type: "search", placeholder: "search the log", autocomplete: "off",
      spellcheck: "false", size: "18",
    });
    this.follow = el("input", { id: `log-follow-${this.id}`, type: "checkbox", checked: true });
    this.download = el("a", {
      class: "button small", download: "",
      href: url(`queues/${encodeURIComponent(queueId)}/steps/${index}/logs`, { download: "true" }).toString(),
    }, "Download");
    const form = el("form", { class: "log-controls", role: "search", "aria-label": `Filter the log of step ${index}` },
      el("label", { for: this.level.id }, "Level"), this.level,
      el("label", { for: this.search.id }, "Search"), this.search,
      el("label", { for: this.follow.id, class: "check" }, this.follow, " follow"),
      this.download);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.open();
    });
    this.level.addEventListener("change", () => this.open());
    this.follow.addEventListener("change", () => this.open());
    this.search.addEventListener("input", () => {
      window.clearTimeout(this.typing);
      this.typing = window.setTimeout(() => this.open(), 300);
    });
    this.note = el("p", { class: "help log-note", "aria-live": "polite" });
    this.box = el("div", { class: "log lines", tabindex: "0", role: "log", "aria-label": `Log of step ${index}` });
    this.node = el("section", { class: "log-panel", "aria-label": `Log of step ${index}` },
      el("h3", {}, `Log (last ${TAIL} lines)`), form, this.note, this.box);
  }

  line(parsed) {
    const level = parsed.level || "unknown";
    const fields = Object.entries(parsed.fields || {}).map(([k, v]) =>
      el("span", { class: "field" }, el("span", { class: "key" }, k), "=", fieldText(v)));
    // A raw line (no level) reads as written; each line ends with its newline, so a copy of the box is the log.
    return el("div", { class: "logline", dataset: { level } },
      parsed.time ? el("time", { class: "when", datetime: parsed.time }, shortTime(parsed.time)) : null,
      parsed.level ? el("span", { class: `lvl lvl-${level}` }, parsed.level) : null,
      el("span", { class: "msg" }, parsed.message),
      fields.length ? el("span", { class: "fields" }, fields) : null,
      "\n");
  }

  /** (Re)read the log with the current filters; followed while the step runs when asked. */
  async open() {
    if (this.abort) this.abort.abort();
    const abort = new AbortController();
    this.abort = abort;
    this.box.replaceChildren();
    this.pending = [];
    this.note.textContent = "reading…";
    this.following = this.follow.checked;
    const params = {
      tail: TAIL, follow: String(this.follow.checked), format: "json",
      level: this.level.value, grep: this.search.value.trim(),
    };
    try {
      const answer = await fetch(url(`queues/${encodeURIComponent(this.queueId)}/steps/${this.index}/logs`, params),
        { credentials: "same-origin", signal: abort.signal });
      if (!answer.ok) {
        let message = `HTTP ${answer.status}`;
        let data = null;
        try {
          const envelope = await answer.json();
          message = envelope.message || message;
          data = envelope.data;
        } catch {
          // not an envelope
        }
        throw new ApiError(answer.status, message, data);
      }
      this.note.textContent = this.follow.checked ? "following" : "";
      const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
      let rest = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        rest += value;
        const lines = rest.split("\n");
        rest = lines.pop();
        for (const text of lines) if (text) this.pending.push(JSON.parse(text));
        schedule(`log-${this.id}`, () => this.flush(abort));
      }
      if (!abort.signal.aborted) {
        this.flush(abort);
        const shown = this.box.childElementCount;
        this.note.textContent = `${shown} line${shown === 1 ? "" : "s"}` +
          (this.follow.checked ? "; end of log: the step ended" : "") +
          (shown === 0 && (params.level || params.grep) ? " match the filters" : "");
        this.following = false;
      }
    } catch (exc) {
      if (abort.signal.aborted) return;
      this.following = false;
      const named = exc instanceof ApiError ? exc.fieldErrors.map((e) => `${e.field}: ${e.message}`).join("; ") : "";
      this.note.textContent = exc.status === 404 ? `no log yet: ${visible(exc.message)}` : `no log: ${named || exc.message}`;
    }
  }

  flush(abort) {
    if (abort.signal.aborted || !this.pending.length) return;
    const atEnd = this.box.scrollTop + this.box.clientHeight >= this.box.scrollHeight - 4;
    this.box.append(...this.pending.map((p) => this.line(p)));
    this.pending = [];
    while (this.box.childElementCount > KEEP) this.box.firstElementChild.remove();
    if (atEnd) this.box.scrollTop = this.box.scrollHeight; // follow only a reader at the bottom
  }

  destroy() {
    if (this.abort) this.abort.abort();
    window.clearTimeout(this.typing);
    cancel(`log-${this.id}`);
  }
}
