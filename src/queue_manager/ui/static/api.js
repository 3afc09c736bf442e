// The HTTP API (docs/api.md), relative to the service root so a path prefix behind a proxy works.
// Every answer is the envelope {status, message, data}; a failure becomes an ApiError.

export const ROOT = new URL("../", window.location.href);

let csrfToken = null;

/** The CSRF token of the cookie session (from /auth/me or /auth/login), sent on mutations. */
export function setCsrf(token) {
  csrfToken = token || null;
}

export class ApiError extends Error {
  constructor(status, message, data) {
    super(message);
    this.status = status;
    this.data = data;
  }

  /** The 422 envelope's per-field errors: [{field, message}]. */
  get fieldErrors() {
    return (this.data && Array.isArray(this.data.errors) && this.data.errors) || [];
  }
}

export function url(path, params) {
  const target = new URL(path.replace(/^\//, ""), ROOT);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") target.searchParams.set(key, value);
  }
  return target;
}

export async function request(method, path, { params, body, headers, signal } = {}) {
  const sent = { ...(headers || {}) };
  if (body !== undefined) sent["content-type"] = "application/json";
  if (method !== "GET" && csrfToken) sent["X-CSRF-Token"] = csrfToken;
  let answer;
  try {
    answer = await fetch(url(path, params), {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      signal,
    });
  } catch (exc) {
    if (exc.name === "AbortError") throw exc;
    throw new ApiError(0, "the service cannot be reached", null);
  }
  let envelope = null;
  try {
    envelope = await answer.json();
  } catch {
    envelope = null;
  }
  if (!answer.ok || !envelope || envelope.status !== "success") {
    const message = (envelope && envelope.message) || `HTTP ${answer.status}`;
    throw new ApiError(answer.status, message, envelope ? envelope.data : null);
  }
  return envelope;
}

export const get = (path, params, signal) => request("GET", path, { params, signal });
export const post = (path, options) => request("POST", path, options || {});

/** A step's log as a stream of text chunks (tail + follow); ends when the step does. */
export async function openLog(queueId, index, { tail, follow, signal }) {
  const answer = await fetch(
    url(`queues/${encodeURIComponent(queueId)}/steps/${index}/logs`, { tail, follow }),
    { credentials: "same-origin", signal },
  );
  if (!answer.ok) {
    let message = `HTTP ${answer.status}`;
    try {
      message = (await answer.json()).message || message;
    } catch {
      // not an envelope
    }
    throw new ApiError(answer.status, message, null);
  }
  return answer.body.pipeThrough(new TextDecoderStream());
}
