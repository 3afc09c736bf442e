// The rate-limit banner: while a group's breaker is open (GET /rate-limits), a banner above
// every view says which group, why, and counts down to when its steps launch again.

import { get } from "./api.js";
import { el } from "./format.js";
import { schedule } from "./frame.js";

/** How often the groups are read while none is open, and while one is. */
const POLL_MS = 10000;
const POLL_OPEN_MS = 3000;

let groups = [];
let pollTimer = null;
let tickTimer = null;

function left(until) {
  const seconds = Math.max(0, Math.ceil((Date.parse(until) - Date.now()) / 1000));
  const m = Math.floor(seconds / 60);
  const s = String(seconds % 60).padStart(2, "0");
  return m >= 60 ? `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m ${s}s` : `${m}:${s}`;
}

function render() {
  const banner = document.getElementById("rate-limits");
  if (!banner) return;
  const open = groups.filter((g) => g.open && g.until);
  banner.hidden = open.length === 0;
  banner.replaceChildren(
    ...open.map((g) =>
      el(
        "p",
        { class: "rate-limit", dataset: { group: g.group } },
        el("strong", {}, `Rate limit: ${g.group}`),
        " — its steps launch again in ",
        el("span", { class: "countdown", dataset: { until: g.until } }, left(g.until)),
        ` (until ${new Date(g.until).toLocaleTimeString()})`,
        g.reason ? el("span", { class: "reason" }, `: ${g.reason}`) : null,
      ),
    ),
  );
}

function tick() {
  let closed = false;
  for (const node of document.querySelectorAll("#rate-limits .countdown")) {
    node.textContent = left(node.dataset.until);
    if (Date.parse(node.dataset.until) <= Date.now()) closed = true;
  }
  if (closed) poll();
}

async function poll() {
  clearTimeout(pollTimer);
  try {
    groups = (await get("rate-limits")).data || [];
  } catch {
    groups = [];
  }
  schedule("rate-limits", render);
  const anyOpen = groups.some((g) => g.open);
  clearInterval(tickTimer);
  tickTimer = anyOpen ? setInterval(tick, 1000) : null;
  pollTimer = setTimeout(poll, anyOpen ? POLL_OPEN_MS : POLL_MS);
}

/** Start watching the groups (once signed in: the route needs a viewer). */
export function watchRateLimits() {
  poll();
}
