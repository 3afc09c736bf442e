// WS /ws/topic with reconnects. Browsers send the session cookie with the upgrade (same origin).
// After every reconnect the subscriber is told to re-read state over REST: updates sent while
// the socket was down are not replayed, so the page would otherwise be silently stale.

import { ROOT } from "./api.js";

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
