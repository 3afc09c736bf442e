// The dashboard's entry point: who is calling, the hash router, the header.
// Routes: #/queues[?status=&symbol=&parent=], #/queues/<id>, #/start[?kind=backfill],
// #/schedules, #/schedules/new, #/schedules/<name>, #/overview[?window=], #/login,
// #/coverage[?symbol=&type=&from=&to=&zoom=], #/collections[?prefix=], #/collections/<name>.

import { ApiError, get, post, setCsrf } from "./api.js";
import { el } from "./format.js";
import { onConnection } from "./live.js";
import { completeSignIn } from "./oidc.js";
import { watchRateLimits } from "./ratelimits.js";
import * as collections from "./views/collections.js";
import * as coverage from "./views/coverage.js";
import * as login from "./views/login.js";
import * as overview from "./views/overview.js";
import * as queue from "./views/queue.js";
import * as queues from "./views/queues.js";
import * as scheduleView from "./views/schedule.js";
import * as schedules from "./views/schedules.js";
import * as start from "./views/start.js";

const RANK = { viewer: 0, operator: 1, admin: 2 };

const session = {
  config: { auth: false, oidc: null },
  me: null,
  /** True when the caller's role allows what `role` may do. */
  can(role) {
    return Boolean(this.me) && RANK[this.me.role] >= RANK[role];
  },
};

let current = null;
const view = document.getElementById("view");

function parseHash() {
  const raw = window.location.hash.replace(/^#/, "") || "/queues";
  const [path, query] = raw.split("?");
  return { parts: path.split("/").filter(Boolean), params: new URLSearchParams(query || "") };
}

export function navigate(hash) {
  if (window.location.hash === hash) route();
  else window.location.hash = hash;
}

function route() {
  const { parts, params } = parseHash();
  if (current && current.destroy) current.destroy();
  current = null;
  view.replaceChildren();
  const ctx = { session, navigate, signedIn, params };
  let name = parts[0] || "queues";
  if (!session.me && name !== "login") {
    sessionStorage.setItem("qm.after-login", window.location.hash || "#/queues");
    name = "login";
    window.history.replaceState(null, "", "#/login");
  }
  if (name === "start" && !session.can("operator")) name = "queues";
  if (name === "schedules" && parts[1] === "new" && !session.can("operator")) parts.splice(1);
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.toggleAttribute("aria-current", link.dataset.nav === name);
    if (link.dataset.nav === name) link.setAttribute("aria-current", "page");
  }
  if (name === "queues" && parts[1]) current = queue.mount(view, ctx, decodeURIComponent(parts[1]));
  else if (name === "start") current = start.mount(view, ctx);
  else if (name === "schedules" && parts[1] === "new") current = scheduleView.mountNew(view, ctx);
  else if (name === "schedules" && parts[1]) current = scheduleView.mount(view, ctx, decodeURIComponent(parts[1]));
  else if (name === "schedules") current = schedules.mount(view, ctx);
  else if (name === "login") current = login.mount(view, ctx);
  else if (name === "overview") current = overview.mount(view, ctx);
  else if (name === "coverage") current = coverage.mount(view, ctx);
  else if (name === "collections") current = collections.mount(view, ctx, parts[1] ? decodeURIComponent(parts[1]) : null);
  else current = queues.mount(view, ctx);
  const heading = view.querySelector("h1");
  if (heading) document.title = `${heading.textContent} · queue-manager`;
}

async function whoAmI() {
  try {
    const answer = await get("auth/me");
    session.me = answer.data;
    setCsrf(answer.data.csrf_token);
  } catch (exc) {
    if (!(exc instanceof ApiError) || exc.status !== 401) throw exc;
    session.me = null;
    setCsrf(null);
  }
  renderUser();
}

/** After a login: who we are now, then where the person was going. */
async function signedIn() {
  await whoAmI();
  const next = sessionStorage.getItem("qm.after-login");
  sessionStorage.removeItem("qm.after-login");
  navigate(next && next !== "#/login" ? next : "#/queues");
}

function renderUser() {
  const area = document.getElementById("user");
  const startLink = document.querySelector('[data-nav="start"]');
  startLink.hidden = !session.can("operator");
  if (!session.me) {
    area.replaceChildren();
    return;
  }
  const who = el(
    "span",
    { class: "who", dataset: { role: session.me.role } },
    session.me.name,
    " ",
    el("span", { class: "role" }, session.me.role),
  );
  const out = session.config.auth
    ? el("button", { type: "button", class: "button small", onclick: logout }, "Log out")
    : null;
  area.replaceChildren(...[who, out].filter(Boolean));
}

async function logout() {
  await post("auth/logout").catch(() => undefined);
  session.me = null;
  setCsrf(null);
  renderUser();
  navigate("#/login");
}

function showConnection(state) {
  const badge = document.getElementById("connection");
  badge.dataset.state = state;
  badge.textContent = { live: "live", connecting: "connecting…", reconnecting: "reconnecting…" }[state] || "offline";
}

async function boot() {
  onConnection(showConnection);
  try {
    session.config = (await get("ui/config.json")).data;
  } catch {
    session.config = { auth: true, oidc: null };
  }
  if (session.config.oidc) {
    try {
      const tokens = await completeSignIn(session.config.oidc);
      for (const token of tokens || []) {
        try {
          await post("auth/login", { body: { token } });
          break;
        } catch (exc) {
          if (token === tokens[tokens.length - 1]) throw exc;
        }
      }
    } catch (exc) {
      sessionStorage.setItem("qm.login-error", exc.message);
    }
  }
  await whoAmI().catch(() => undefined);
  watchRateLimits();
  window.addEventListener("hashchange", route);
  window.addEventListener("qm:unauthenticated", async () => {
    await whoAmI().catch(() => undefined);
    if (!session.me) navigate("#/login");
  });
  route();
  document.body.dataset.ready = "true";
}

boot();
