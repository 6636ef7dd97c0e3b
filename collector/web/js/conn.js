// The viewer connection: a WebSocket to the collector that reconnects by itself,
// with request/reply for window queries.

export class Connection extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.ws = null;
    this.nextId = 1;
    this.pending = new Map();
    this.retry = 250;
    this.subscription = undefined;
    this.connected = false;
    this.open();
  }

  open() {
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => {
      this.connected = true;
      this.retry = 250;
      if (this.subscription !== undefined) this.send({ op: "subscribe", session: this.subscription });
      this.dispatchEvent(new CustomEvent("status", { detail: { connected: true } }));
    };
    ws.onmessage = (m) => {
      let msg;
      try {
        msg = JSON.parse(m.data);
      } catch {
        return;
      }
      if (msg.type === "window" || (msg.type === "error" && msg.id != null)) {
        const p = this.pending.get(msg.id);
        if (p) {
          this.pending.delete(msg.id);
          msg.type === "error" ? p.reject(new Error(msg.message)) : p.resolve(msg);
        }
        return;
      }
      this.dispatchEvent(new CustomEvent("message", { detail: msg }));
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.connected = false;
      for (const p of this.pending.values()) p.reject(new Error("connection lost"));
      this.pending.clear();
      this.dispatchEvent(new CustomEvent("status", { detail: { connected: false, retryMs: this.retry } }));
      setTimeout(() => this.open(), this.retry);
      this.retry = Math.min(this.retry * 2, 5000);
    };
    ws.onerror = () => {};
  }

  send(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj));
  }

  subscribe(session) {
    this.subscription = session;
    this.send({ op: "subscribe", session });
  }

  /** Asks for a window; resolves with the reply. */
  window(session, startNs, endNs, maxIntervals, buckets) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (!this.connected) return reject(new Error("not connected"));
      this.pending.set(id, { resolve, reject });
      this.send({ op: "window", id, session, start_ns: Math.max(0, Math.floor(startNs)), end_ns: Math.ceil(endNs), max_intervals: maxIntervals, buckets });
    });
  }

  replay(action, speed) {
    this.send({ op: "replay", action, speed });
  }
}
