// Single sign-on in the browser: the OIDC authorization code flow with PKCE, as a public client
// (queue-manager holds no client secret). The token the issuer hands back is traded for the
// session cookie with POST /auth/login, exactly as a pasted token is (docs/dashboard.md).

const KEY = "qm.oidc";

function base64url(bytes) {
  let text = "";
  for (const b of new Uint8Array(bytes)) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function random(n = 32) {
  return base64url(crypto.getRandomValues(new Uint8Array(n)));
}

async function discover(issuer) {
  const answer = await fetch(`${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`);
  if (!answer.ok) throw new Error(`the identity provider's discovery answered ${answer.status}`);
  return answer.json();
}

function redirectUri() {
  return new URL("./", window.location.href).href; // /ui/, without the hash
}

/** Leave for the identity provider's sign-in page. */
export async function beginSignIn(oidc, returnTo) {
  const meta = await discover(oidc.issuer);
  const verifier = random(48);
  const state = random(16);
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem(KEY, JSON.stringify({ verifier, state, returnTo }));
  const target = new URL(meta.authorization_endpoint);
  target.search = new URLSearchParams({
    response_type: "code",
    client_id: oidc.client_id,
    redirect_uri: redirectUri(),
    scope: "openid profile",
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
  }).toString();
  window.location.assign(target.href);
}

/**
 * Back from the provider with ?code=&state=: the tokens it answers for the code, best first
 * (the ID token is always issued to our client id; some providers put roles in the access
 * token). Null when this page load is not a return from the provider.
 */
export async function completeSignIn(oidc) {
  const params = new URLSearchParams(window.location.search);
  if (!params.has("code") && !params.has("error")) return null;
  const saved = JSON.parse(sessionStorage.getItem(KEY) || "null");
  sessionStorage.removeItem(KEY);
  // Drop ?code=... from the address bar whatever happens next.
  window.history.replaceState(null, "", redirectUri() + ((saved && saved.returnTo) || "#/queues"));
  if (params.has("error")) throw new Error(params.get("error_description") || params.get("error"));
  if (!saved || saved.state !== params.get("state")) throw new Error("sign-in state mismatch; try again");
  const meta = await discover(oidc.issuer);
  const answer = await fetch(meta.token_endpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: params.get("code"),
      redirect_uri: redirectUri(),
      client_id: oidc.client_id,
      code_verifier: saved.verifier,
    }),
  });
  if (!answer.ok) throw new Error(`the identity provider refused the code (${answer.status})`);
  const tokens = await answer.json();
  return [tokens.id_token, tokens.access_token].filter(Boolean);
}
