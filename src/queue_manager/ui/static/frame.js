// Redraws are coalesced per animation frame: many messages, one DOM update per frame.

const pending = new Map();
let requested = false;

function flush() {
  requested = false;
  const jobs = [...pending.values()];
  pending.clear();
  for (const job of jobs) {
    try {
      job();
    } catch (exc) {
      console.error("redraw failed", exc);
    }
  }
}

/** Run `job` at the next frame; a later call with the same key replaces an earlier one. */
export function schedule(key, job) {
  pending.set(key, job);
  if (!requested) {
    requested = true;
    window.requestAnimationFrame(flush);
  }
}

export function cancel(key) {
  pending.delete(key);
}
