// WS /ws/topic with reconnects. Browsers send the session cookie with the upgrade (same origin).
// After every reconnect the subscriber is told to re-read state over REST: updates sent while
// the socket was down are not replayed, so the page would otherwise be silently stale.
// `applyUpdate` is the one place a view turns an update into state.

import { ROOT } from "./api.js";
import { ms } from "./format.js";

/** What an update sets on its queue (`queue.updated`) or on its step (`step.updated`). */
const FIELDS = ["status", "records_written", "last_loaded_timestamp", "error_message"];

/**
 * Apply one update (docs/api.md, "Live updates") to a queue as the API returned it (`GET
 * /queues/{id}`, or a row of `GET /queues`), in place. Every view applies updates through this,
 * so the queue list, the queue page and the backfill page show the same state, times included:
 * `started_at` and `finished_at` are the server's, carried by every update, never derived here.
 * Returns null when the update is not about this queue or older than what it holds; otherwise
 * what changed: `{status}` (the queue's status changed), `{step}` (the index of the step updated,
 * or null) and `{stepStatus}` (that step's status changed).
 */
export function applyUpdate(queue, m) {
  if (!queue || m.queue_id !== queue.id || ms(m.updated_at) < ms(queue.updated_at)) return null;
  queue.updated_at = m.updated_at;
  // absent only from a replica of an earlier release: keep what the queue holds
  if (m.started_at !== undefined) queue.started_at = m.started_at;
  if (m.finished_at !== undefined) queue.finished_at = m.finished_at;
  const change = { status: false, step: null, stepStatus: false };
  if (m.event === "queue.updated") {
    change.status = queue.status !== m.status;
    for (const field of FIELDS) queue[field] = m[field];
    if (m.progress && queue.backfill) queue.backfill.progress = m.progress;
  } else if (m.event === "step.updated") {
    const step = queue.steps && queue.steps[m.step];
    if (step) {
      change.step = m.step;
      change.stepStatus = step.status !== m.status;
      for (const field of FIELDS) step[field] = m[field];
    }
  }
  return change;
}

const listeners = new Set();
let connection = "idle";

/** The state shown in the header: "connecting", "live", "reconnecting", "offline" (refused),
 * "idle" (this view follows nothing live). */
export function onConnection(listener) {
  listeners.add(listener);
  listener(connection);
  return () => listeners.delete(listener);
}

function announce(state) {
  connection = state;
  for (const listener of listeners) listener(state);
}

export class LiveFeed {
  /**
   * @param {{queueId?: string, onMessages: (batch: object[]) => void, onResync: () => void}} o
   * Messages are handed over in batches (what arrived since the last animation frame).
   */
  constructor({ queueId, onMessages, onResync }) {
    this.queueId = queueId;
    this.onMessages = onMessages;
    this.onResync = onResync;
    this.socket = null;
    this.closed = false;
    this.delay = 250;
    this.opened = false;
    this.buffer = [];
    this.flushing = false;
    this.received = 0;
    this.connect();
  }

  connect() {
    const target = new URL("ws/topic", ROOT);
    target.protocol = target.protocol === "https:" ? "wss:" : "ws:";
    if (this.queueId) target.searchParams.set("queue_id", this.queueId);
    // Several updates per frame, as a JSON array, and each frame answered once read, so that a
    // busy page is sent the latest state rather than a backlog (docs/api.md, "Live updates").
    target.searchParams.set("batch", "1");
    target.searchParams.set("ack", "1");
    announce(this.opened ? "reconnecting" : "connecting");
    const socket = new WebSocket(target);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.delay = 250;
      this.opened = true;
      announce("live");
      // Every open, the first one included: what changed before it is read over REST.
      this.onResync();
    });
    socket.addEventListener("message", (event) => {
      if (socket.readyState === WebSocket.OPEN) socket.send("ack");
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      const messages = Array.isArray(frame) ? frame : [frame];
      let added = 0;
      for (const message of messages) {
        if (!message || message.event === "heartbeat") continue;
        this.buffer.push(message);
        added += 1;
      }
      if (!added) return;
      this.received += added;
      if (!this.flushing) {
        this.flushing = true;
        window.requestAnimationFrame(() => this.flush());
      }
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket || this.closed) return;
      if (event.code === 4401) {
        announce("offline");
        window.dispatchEvent(new CustomEvent("qm:unauthenticated"));
        return;
      }
      announce("reconnecting");
      const wait = this.delay;
      this.delay = Math.min(this.delay * 2, 5000);
      this.timer = window.setTimeout(() => this.connect(), wait);
    });
  }

  flush() {
    this.flushing = false;
    const batch = this.buffer;
    this.buffer = [];
    if (batch.length) this.onMessages(batch);
  }

  close() {
    this.closed = true;
    window.clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000);
    announce("idle");
  }
}
