// #/login: trade an API token (or an OIDC token) for the session cookie, or sign in with SSO.

import { ApiError, post, setCsrf } from "../api.js";
import { el } from "../format.js";
import { beginSignIn } from "../oidc.js";

export function mount(container, ctx) {
  const { session } = ctx;
  if (!session.config.auth) {
    container.append(
      el("h1", {}, "Sign in"),
      el("p", {}, "Auth is off on this service: everyone may use the dashboard without signing in."),
      el("a", { href: "#/queues", class: "button primary" }, "Open the queues"),
    );
    return {};
  }
  const input = el("input", {
    id: "token",
    name: "token",
    type: "password",
    autocomplete: "off",
    required: true,
    spellcheck: "false",
    "aria-describedby": "token-help token-error",
  });
  const problem = el("p", { id: "token-error", class: "field-error", role: "alert" });
  const submit = el("button", { type: "submit", class: "button primary" }, "Sign in");
  const form = el(
    "form",
    { class: "card login", novalidate: true },
    el("label", { for: "token" }, "API token"),
    input,
    el("p", { id: "token-help", class: "help" },
      "An API token (qm_…) from your administrator, or an OIDC access token. It is exchanged for a "
      + "session cookie and not kept by the page."),
    problem,
    el("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.textContent = "";
    if (!input.value.trim()) {
      problem.textContent = "enter a token";
      input.focus();
      return;
    }
    submit.disabled = true;
    try {
      const answer = await post("auth/login", { body: { token: input.value.trim() } });
      input.value = "";
      setCsrf(answer.data.csrf_token);
      await ctx.signedIn();
    } catch (exc) {
      problem.textContent = exc instanceof ApiError ? exc.message : String(exc);
      input.setAttribute("aria-invalid", "true");
      input.focus();
    } finally {
      submit.disabled = false;
    }
  });
  const parts = [el("h1", {}, "Sign in"), form];
  const earlier = sessionStorage.getItem("qm.login-error");
  if (earlier) {
    sessionStorage.removeItem("qm.login-error");
    problem.textContent = `single sign-on failed: ${earlier}`;
  }
  if (session.config.oidc) {
    const sso = el("button", { type: "button", class: "button", id: "sso" }, "Sign in with SSO");
    sso.addEventListener("click", async () => {
      sso.disabled = true;
      try {
        await beginSignIn(session.config.oidc, sessionStorage.getItem("qm.after-login") || "#/queues");
      } catch (exc) {
        problem.textContent = `single sign-on failed: ${exc.message}`;
        sso.disabled = false;
      }
    });
    parts.push(el("div", { class: "card sso" }, el("p", {}, "Or with your organisation's identity provider:"), sso));
  }
  container.append(...parts);
  input.focus();
  return {};
}
