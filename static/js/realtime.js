// gridmgmt real-time client (ES module, no dependencies). Protocol: realtime/PROTOCOL.md.
//
//   import { RealtimeClient } from "/static/js/realtime.js";
//   const rt = new RealtimeClient({
//     scopes: ["street:12"],
//     onSnapshot: async (scope) => { /* fetch the REST snapshot of `scope` and draw it */ },
//     onEvents: (scope, events) => { /* apply envelopes {seq, type, at, data}, already in seq order */ },
//     onKpi: (scope, kpi) => {},
//     onState: (state, info) => {},  // "connecting" | "open" | "reconnecting" | "closed"
//     onError: (frame) => {},        // {t: "error", code, message, scope?}
//     resume: false,                 // true: a reloaded page resumes from sessionStorage's seqs
//   });
//   rt.connect();
//
// Authentication is the page's session cookie. The last seq seen per scope is kept in sessionStorage, so a
// reload of the page or a lost connection resumes where it was: the server replays what was missed, or says
// "reload", and then `onSnapshot` runs again; events that arrive meanwhile are held and applied after it.

const STORE = "gridmgmt.rt.last.";

export class RealtimeClient {
  constructor(options = {}) {
    this.options = options;
    this.url = options.url || `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/feed/`;
    this.scopes = new Set(options.scopes || []);
    this.minDelay = options.minDelay || 500;
    this.maxDelay = options.maxDelay || 30000;
    this.attempt = 0;
    this.ws = null;
    this.closed = false;
    this.heartbeat = 25;
    this.watchdog = null;
    this.loading = new Map(); // scope → events held while its snapshot loads
    // A new page has no drawn state: start each scope from a snapshot, unless the page keeps its own
    // copy of the snapshot across reloads and asks to resume (`resume: true`).
    if (!options.resume) for (const scope of this.scopes) sessionStorage.removeItem(STORE + scope);
  }

  // --- public API -------------------------------------------------------------------------------------------

  connect() {
    this.closed = false;
    this._open();
  }

  close() {
    this.closed = true;
    clearTimeout(this.watchdog);
    if (this.ws) this.ws.close(1000, "bye");
    this._state("closed");
  }

  subscribe(scope) {
    this.scopes.add(scope);
    this._send({ op: "subscribe", scope, last: this.lastSeq(scope) });
  }

  unsubscribe(scope) {
    this.scopes.delete(scope);
    this._send({ op: "unsubscribe", scope });
  }

  // Switch this screen to other scopes on the same connection.
  setScopes(scopes) {
    for (const scope of [...this.scopes]) if (!scopes.includes(scope)) this.unsubscribe(scope);
    for (const scope of scopes) if (!this.scopes.has(scope)) this.subscribe(scope);
  }

  sendPosition(lon, lat, at = new Date().toISOString()) {
    this._send({ op: "position", lon, lat, at });
  }

  lastSeq(scope) {
    const value = sessionStorage.getItem(STORE + scope);
    return value === null ? null : Number(value);
  }

  // --- connection -------------------------------------------------------------------------------------------

  _open() {
    this._state(this.attempt ? "reconnecting" : "connecting", { attempt: this.attempt });
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onmessage = (msg) => this._frame(JSON.parse(msg.data));
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      clearTimeout(this.watchdog);
      if (this.closed) return;
      // Exponential backoff with jitter, so a restarted server is not hit by every screen at once.
      const delay = Math.min(this.maxDelay, this.minDelay * 2 ** this.attempt) * (0.5 + Math.random() / 2);
      this.attempt += 1;
      this._state("reconnecting", { attempt: this.attempt, delay, code: ev.code, reason: ev.reason });
      setTimeout(() => this.closed || this._open(), delay);
    };
    ws.onerror = () => {}; // onclose follows and reconnects
  }

  _send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
    // Not open: `hello` re-subscribes every scope with its last seq.
  }

  _state(state, info = {}) {
    if (this.options.onState) this.options.onState(state, info);
  }

  _arm() {
    // No frame for 2.5 heartbeats: the connection is dead even if the browser has not noticed.
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => this.ws && this.ws.close(4000, "heartbeat missed"), this.heartbeat * 2500);
  }

  // --- frames -----------------------------------------------------------------------------------------------

  _frame(frame) {
    this._arm();
    switch (frame.t) {
      case "hello":
        this.heartbeat = frame.heartbeat || 25;
        this.attempt = 0;
        this._state("open");
        for (const scope of this.scopes) this._send({ op: "subscribe", scope, last: this.lastSeq(scope) });
        break;
      case "subscribed":
        if (this.lastSeq(frame.scope) === null) this._snapshot(frame.scope, frame.seq); // a fresh screen
        break;
      case "reload":
        this._snapshot(frame.scope, frame.seq);
        break;
      case "events":
        this._events(frame);
        break;
      case "error":
        if (this.options.onError) this.options.onError(frame);
        break;
      default:
        break; // hb, pong, position, unsubscribed
    }
  }

  _events(frame) {
    const scope = frame.scope;
    if (!this.scopes.has(scope)) return;
    if (this.loading.has(scope)) {
      this.loading.get(scope).push(frame);
      return;
    }
    const last = this.lastSeq(scope) ?? 0;
    const fresh = frame.events.filter((e) => e.seq > last); // never apply one twice
    if (fresh.length) {
      sessionStorage.setItem(STORE + scope, String(fresh[fresh.length - 1].seq));
      if (this.options.onEvents) this.options.onEvents(scope, fresh, frame);
    }
    if (frame.kpi && this.options.onKpi) this.options.onKpi(scope, frame.kpi);
  }

  async _snapshot(scope, seq) {
    // Events after `seq` are held until the snapshot is drawn, then applied in order.
    this.loading.set(scope, []);
    sessionStorage.setItem(STORE + scope, String(seq));
    try {
      if (this.options.onSnapshot) await this.options.onSnapshot(scope, seq);
    } finally {
      const held = this.loading.get(scope) || [];
      this.loading.delete(scope);
      for (const frame of held) this._events(frame);
    }
  }
}
