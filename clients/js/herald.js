// Herald client: speaks Herald's client protocol v1.1 over WebSocket or SSE, reconnects by itself, restores ident and joins,
// and recovers the events it missed meanwhile from each stream's last position (`since`).

/** WebSocket.OPEN, spelled out so an injected WebSocket class need not carry the constant. */
const WS_OPEN = 1;
/** The close code of a connection the backend ended (`POST /v1/users/{user}/disconnect`). */
const DISCONNECTED_BY_BACKEND = 4001;

/**
 * Delay in ms before reconnect attempt `attempt` (0 for the first retry after a loss).
 * "Full jitter": a uniform pick in [0, min(cap, base * factor^attempt)), so a crowd of clients cut
 * off by the same gateway restart spreads its reconnects over the whole window instead of stampeding.
 */
export function backoffDelay(attempt, { base = 500, factor = 2, cap = 30000, random = Math.random } = {}) {
  const ceiling = Math.min(cap, base * Math.pow(factor, Math.max(0, attempt)));
  return Math.floor(random() * ceiling);
}

/**
 * Which transport the next connection attempt uses.
 * WebSocket is preferred; after `fallbackAfter` consecutive WebSocket attempts that never got a
 * `welcome` the client falls back to SSE, yet every `wsRetryEvery`-th attempt in that mode tries
 * the WebSocket again, because whatever blocked it (a proxy, a captive portal) may have gone.
 * `fallbackAttempts` counts the attempts made since the fallback began.
 */
export function chooseTransport({ transports, wsFailures, fallbackAttempts }, { fallbackAfter = 2, wsRetryEvery = 5 } = {}) {
  if (!transports.includes("sse")) return "websocket";
  if (!transports.includes("websocket")) return "sse";
  if (wsFailures < fallbackAfter) return "websocket";
  return wsRetryEvery > 0 && fallbackAttempts % wsRetryEvery === wsRetryEvery - 1 ? "websocket" : "sse";
}

/** An Error with the protocol's `code` (e.g. `forbidden`, or the client's own `timeout`, `disconnected`, `closed`). */
function heraldError(code, message, frame) {
  return Object.assign(new Error(message || code), { code, frame });
}

const DEFAULTS = {
  transports: ["websocket", "sse"],
  timeoutMs: 10000, // a request, or a connection's wait for `welcome`, fails after this
  pingMs: 25000, // a `ping` this often notices a dead server that never closed the socket (0: off)
  fallbackAfter: 2,
  wsRetryEvery: 5,
  wsProbeMs: 120000, // while on SSE, try a WebSocket again after this long (0: never)
  backoff: {},
  random: Math.random,
};

export class Herald {
  /**
   * @param {string} url the gateway's http(s) base URL (default: the page's origin); `ws` and `sse` are resolved below its path
   * @param {object} [options] see herald.d.ts
   */
  constructor(url = globalThis.location?.origin, options = {}) {
    this.options = { ...DEFAULTS, ...options };
    const base = new URL(url, globalThis.location?.href);
    if (!base.pathname.endsWith("/")) base.pathname += "/";
    const ws = new URL("ws", base);
    ws.protocol = ws.protocol === "https:" ? "wss:" : "ws:";
    this.wsUrl = options.wsUrl ?? ws.href;
    this.sseUrl = options.sseUrl ?? new URL("sse", base).href;
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this._EventSource = options.EventSource ?? globalThis.EventSource;
    // A browser's fetch must be called with `this` = window, hence the bind.
    this._fetch = options.fetch ?? globalThis.fetch?.bind(globalThis);
    // Node 20 has no EventSource and may lack WebSocket: quietly use what this runtime offers.
    this.transports = this.options.transports.filter((t) =>
      t === "websocket" ? !!this._WebSocket : t === "sse" ? !!(this._EventSource && this._fetch) : false);
    if (!this.transports.length) throw new Error("herald: no usable transport; pass WebSocket, or EventSource and fetch, in the options");

    this.state = "disconnected";
    this.transport = null; // "websocket" | "sse" while connected
    this.conn = null; // the server's connection id
    this.user = null; // set by a successful ident
    this._handlers = new Map();
    this._pending = new Map(); // request id -> {frame, resolve, reject, timer, internal, link}
    this._nextId = 1;
    this._auth = null; // credentials (or a function returning them) of the last successful ident
    this._channels = new Set(); // channels joined, re-joined after every reconnect
    this._userPos = null; // last position seen in the user's stream, sent as `since` on re-ident
    this._channelPos = new Map(); // channel -> last position seen in its stream
    this._link = null; // the connection in use
    this._probe = null; // a WebSocket tried while on SSE, adopted once it works
    this._attempt = 0;
    this._wsFailures = 0;
    this._fallbackAttempts = 0;
    this._seen = new Set(); // recent event ids: during a switch two connections may carry the same event
    this._seenOrder = [];
    this._closed = false;
    // Connect on the next tick, so handlers registered right after `new` see "connecting".
    queueMicrotask(() => this._closed || this._connect());
  }

  /** Identify with `{token}` or `{username, password}`, or a function returning them (called again on every reconnect, so it can mint a fresh token). */
  ident(auth) {
    const send = (creds) => this._request({ type: "ident", auth: creds }).then((ok) => {
      if (ok.user !== this.user) this._userPos = null; // another user's stream
      this._auth = auth;
      this.user = ok.user ?? null;
      this._userPos = ok.pos ?? this._userPos;
      return ok;
    });
    return typeof auth === "function" ? new Promise((resolve) => resolve(auth())).then(send) : send(auth);
  }

  join(channel) {
    return this._request({ type: "join", channel }).then((ok) => {
      this._channels.add(channel);
      if (ok.pos && !this._channelPos.has(channel)) this._channelPos.set(channel, ok.pos);
      return ok;
    });
  }

  leave(channel) {
    this._channels.delete(channel); // at once, so a reconnect racing the reply does not join it again
    this._channelPos.delete(channel);
    return this._request({ type: "leave", channel });
  }

  /** Send an event to the members of a joined channel; resolves with `{event_id}` once a dispatcher accepted it. Not sent again after a lost connection (it rejects with code `disconnected`: it may or may not have gone out). */
  publish(channel, event, payload = null) {
    return this._request({ type: "publish", channel, event, payload }, null, { once: true })
      .then((ok) => ({ event_id: ok.event_id }));
  }

  /** Call a backend method; resolves with its result, rejects with its error code (`app_1000`..`app_1999`, `not_found`, `unavailable`, …). `timeoutMs` bounds the wait (default: the client's). Not sent again after a lost connection. */
  rpc(method, data = null, { timeoutMs } = {}) {
    return this._request({ type: "rpc", method, data }, null, { once: true, timeoutMs })
      .then((result) => result.data);
  }

  /** Round trip to the server; resolves with the time it took in ms. */
  ping() {
    const start = Date.now();
    return this._request({ type: "ping" }).then(() => Date.now() - start);
  }

  /** Listen to a server event by name, `*` for every server event, or the client's own `state` and `error`. Returns a function that unsubscribes. */
  on(name, fn) {
    if (!this._handlers.has(name)) this._handlers.set(name, new Set());
    this._handlers.get(name).add(fn);
    return () => this.off(name, fn);
  }

  /** Remove one handler, or every handler of `name` when `fn` is omitted. */
  off(name, fn) {
    if (fn) this._handlers.get(name)?.delete(fn);
    else this._handlers.delete(name);
  }

  /** Close for good: no reconnect, pending requests fail with code `closed`. */
  close() {
    if (this._closed) return;
    this._closed = true;
    clearTimeout(this._reconnectTimer);
    this._stopTimers();
    const links = [this._link, this._probe];
    this._link = this._probe = null;
    for (const link of links) link?.close();
    for (const e of this._pending.values()) {
      clearTimeout(e.timer);
      e.reject(heraldError("closed", "the client was closed"));
    }
    this._pending.clear();
    this.transport = this.conn = null;
    this._setState("disconnected");
  }

  // ---- requests ----

  /** Send a request and await its reply. With `link` it is the client's own (restore, ping) and goes out at once on that link; otherwise it waits until the client is connected. */
  _request(frame, link = null, { once = false, timeoutMs = this.options.timeoutMs } = {}) {
    if (this._closed) return Promise.reject(heraldError("closed", "the client was closed"));
    return new Promise((resolve, reject) => {
      const id = this._nextId++;
      const entry = { frame: { ...frame, id }, resolve, reject, internal: !!link, once, link: null };
      entry.timer = setTimeout(() => {
        this._pending.delete(id);
        reject(heraldError("timeout", `no reply to ${frame.type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this._pending.set(id, entry);
      const target = link ?? (this.state === "connected" ? this._link : null);
      if (target) this._transmit(entry, target);
    });
  }

  _transmit(entry, link) {
    entry.link = link;
    link.send(entry.frame);
  }

  /** Send, in order, the application's requests that wait for a connection. */
  _flush() {
    for (const e of this._pending.values()) if (!e.internal && !e.link) this._transmit(e, this._link);
  }

  /** A link is gone: the application's requests on it wait for the next one, except publishes and RPCs, which may have taken effect and must not happen twice; the client's own fail (their caller starts over anyway). */
  _requeue(link) {
    for (const [id, e] of this._pending) {
      if (e.link !== link) continue;
      if (!e.internal && !e.once) { e.link = null; continue; }
      clearTimeout(e.timer);
      this._pending.delete(id);
      e.reject(heraldError("disconnected", e.once
        ? `the connection was lost before the ${e.frame.type} was answered; it may or may not have taken effect`
        : "the connection was lost"));
    }
  }

  // ---- incoming frames ----

  _onFrame(link, f) {
    if (!f || typeof f !== "object") return;
    switch (f.type) {
      case "welcome": return this._onWelcome(link, f);
      case "ok": case "pong": case "result": case "error": return this._settle(f);
      case "event": return this._dispatch(f);
      default: // frame types of a newer server: not ours to judge
    }
  }

  _settle(f) {
    const e = this._pending.get(f.id);
    const err = f.type === "error" ? heraldError(f.code, f.message, f) : null;
    if (!e) {
      if (err) this._emit("error", err); // an error about no request of ours: still worth telling
      return;
    }
    clearTimeout(e.timer);
    this._pending.delete(f.id);
    if (err) e.reject(err);
    else e.resolve(f);
  }

  _dispatch(f) {
    if (f.id != null) {
      if (this._seen.has(f.id)) return;
      this._seen.add(f.id);
      this._seenOrder.push(f.id);
      if (this._seenOrder.length > 256) this._seen.delete(this._seenOrder.shift());
    }
    // Remember how far each stream got, to ask for what follows after a reconnect.
    for (const [channel, pos] of Object.entries(f.pos?.channels ?? {})) {
      if (this._channels.has(channel)) this._channelPos.set(channel, pos);
    }
    const userPos = this.user != null ? f.pos?.users?.[this.user] : undefined;
    if (userPos) this._userPos = userPos;
    const meta = { id: f.id, event: f.event, via: { users: f.via?.users ?? [], channels: f.via?.channels ?? [] } };
    if (f.from) meta.from = { user: f.from.user };
    this._emit(f.event, f.payload, meta);
    this._emit("*", f.payload, meta);
  }

  _emit(name, ...args) {
    for (const fn of [...(this._handlers.get(name) ?? [])]) {
      // One faulty handler must not starve the others; rethrow later so it still shows up.
      try { fn(...args); } catch (e) { queueMicrotask(() => { throw e; }); }
    }
  }

  _setState(state, again = false) {
    if (this.state === state && !again) return;
    this.state = state;
    this._emit("state", state);
  }

  // ---- connection life cycle ----

  _connect() {
    this._reconnectTimer = null;
    const kind = chooseTransport(
      { transports: this.transports, wsFailures: this._wsFailures, fallbackAttempts: this._fallbackAttempts }, this.options);
    if (this._wsFailures >= this.options.fallbackAfter) this._fallbackAttempts++;
    this._setState("connecting");
    this._link = kind === "websocket" ? this._openWebSocket() : this._openSse();
  }

  _scheduleReconnect() {
    const delay = backoffDelay(this._attempt++, { ...this.options.backoff, random: this.options.random });
    this._reconnectTimer = setTimeout(() => this._connect(), delay);
  }

  /** The common shape of both transports: send(frame), receive(frame or text), close(). */
  _makeLink(kind, send, shut) {
    const link = {
      kind, conn: null, secret: null, welcomed: false, closed: false,
      send: (frame) => { if (!link.closed) send(frame); },
      receive: (data) => {
        if (link.closed) return; // a late reply from a retired link must not settle a request re-sent elsewhere
        let frame = data;
        if (typeof data === "string") { try { frame = JSON.parse(data); } catch { return; } }
        this._onFrame(link, frame);
      },
      close: () => {
        if (link.closed) return;
        link.closed = true;
        clearTimeout(link.timer);
        try { shut(); } catch { /* already closed */ }
        this._onLinkClosed(link);
      },
    };
    // A connection that neither opens nor fails (a black-holed port) must not stall us.
    link.timer = setTimeout(() => link.close(), this.options.timeoutMs);
    return link;
  }

  _openWebSocket() {
    let ws;
    try { ws = new this._WebSocket(this.wsUrl); } catch { ws = null; }
    const link = this._makeLink("websocket", (f) => ws.readyState === WS_OPEN && ws.send(JSON.stringify(f)), () => ws?.close());
    if (!ws) { queueMicrotask(() => link.close()); return link; }
    ws.onmessage = (e) => link.receive(e.data);
    ws.onclose = (e) => {
      // 4001: the backend disconnected this user on purpose; coming back by ourselves would undo it.
      if (e?.code === DISCONNECTED_BY_BACKEND) link.endedByBackend = true;
      link.close();
    };
    return link;
  }

  _openSse() {
    const es = new this._EventSource(this.sseUrl);
    let queue = Promise.resolve(); // POSTs go one at a time: an ident must reach the server before the join after it
    const link = this._makeLink("sse", (f) => { queue = queue.then(() => this._post(link, f)); }, () => es.close());
    es.onmessage = (e) => link.receive(e.data);
    // EventSource would reconnect by itself, but to a new connection with no ident and no joins: we do it ourselves.
    es.onerror = () => link.close();
    return link;
  }

  /** Send one frame over SSE: POST /sse/{conn} with the stream's secret, the reply frame comes back in the body. */
  async _post(link, frame) {
    if (link.closed) return;
    let res;
    try {
      res = await this._fetch(`${this.sseUrl}/${encodeURIComponent(link.conn)}`, {
        method: "POST",
        headers: { "content-type": "application/json", "X-Herald-Secret": link.secret ?? "" },
        body: JSON.stringify(frame),
      });
    } catch {
      return link.close(); // the network is gone, and with it this connection
    }
    if (res.status === 404 || res.status === 410) return link.close(); // the server forgot this connection (or refused our secret)
    let body = null;
    try { body = JSON.parse(await res.text()); } catch { /* empty or not JSON */ }
    // The reply is about this frame even when the server could not read its id (e.g. a bad body).
    if (body?.type) return link.receive({ ...body, id: body.id ?? frame.id });
    if (!res.ok) {
      link.receive({ type: "error", id: frame.id, code: body?.error?.code ?? "unavailable", message: body?.error?.message ?? `HTTP ${res.status}` });
    }
  }

  _onWelcome(link, f) {
    if (link.welcomed) return;
    link.welcomed = true;
    link.conn = f.conn;
    link.secret = f.secret; // SSE only: proves our POSTs own this stream
    clearTimeout(link.timer);
    if (link.kind === "websocket") this._wsFailures = this._fallbackAttempts = 0;
    this._restore(link).then(() => this._ready(link), (err) => this._restoreFailed(link, err));
  }

  /**
   * Bring a fresh connection to where the last one was: ident, then every joined channel, each
   * with the last position seen (`since`), so the server replays what was missed meanwhile.
   * Emits `resubscribed` per channel and `recovered` once: an app reloads state only where
   * `recovered` is false (too much missed, or history unavailable).
   */
  async _restore(link) {
    const outcome = { recovered: true, user: undefined, channels: {} };
    const restoring = !!this._auth || this._channels.size > 0;
    if (this._auth) {
      const creds = typeof this._auth === "function" ? await this._auth() : this._auth;
      const frame = { type: "ident", auth: creds };
      if (this._userPos) frame.since = this._userPos;
      const ok = await this._request(frame, link);
      if (ok.user !== this.user) this._userPos = null;
      this.user = ok.user ?? this.user;
      outcome.user = this._settlePosition(ok, frame.since, (pos) => { this._userPos = pos; });
      outcome.recovered &&= outcome.user;
    }
    // Loop, because a join may still complete on the old link while a probe is being restored.
    const done = new Set();
    for (let todo = [...this._channels]; todo.length; todo = [...this._channels].filter((c) => !done.has(c))) {
      await Promise.all(todo.map((channel) => {
        done.add(channel);
        const frame = { type: "join", channel };
        const since = this._channelPos.get(channel);
        if (since) frame.since = since;
        return this._request(frame, link).then((ok) => {
          const recovered = this._settlePosition(ok, since, (pos) => this._channelPos.set(channel, pos));
          outcome.channels[channel] = recovered;
          outcome.recovered &&= recovered;
          this._emit("resubscribed", { channel, recovered });
        }, (err) => {
          if (!err.frame) throw err; // lost or timed out: start over with a new connection
          this._channels.delete(channel); // refused now (grant gone): stop trying, tell the app
          this._channelPos.delete(channel);
          this._emit("error", err);
        });
      }));
    }
    if (restoring) this._emit("recovered", outcome);
  }

  /**
   * Whether a re-ident or re-join recovered every event after `since`. If so the replayed
   * events carry the positions from here on; if not, the stream's top is where to go on from.
   */
  _settlePosition(ok, since, keep) {
    const recovered = !!since && ok.recovered === true;
    if (!recovered) {
      if (ok.pos) keep(ok.pos);
    }
    return recovered;
  }

  _restoreFailed(link, err) {
    if (link.closed) return;
    if (link === this._link && err.frame) {
      // The server refused the old credentials (e.g. an expired token): the app must ident again.
      this._auth = this.user = null;
      this._channels.clear();
      this._emit("error", err);
      return this._ready(link);
    }
    link.close();
  }

  _ready(link) {
    if (link.closed) return;
    if (link === this._probe) {
      // The WebSocket works again: move over, then retire SSE (its pending requests move along).
      const old = this._link;
      this._probe = null;
      this._link = link;
      old?.close();
    } else if (link !== this._link) return;
    this._attempt = 0;
    this.transport = link.kind;
    this.conn = link.conn;
    this._setState("connected", true); // again after a switch of transport, so a UI can show it
    this._flush();
    this._startTimers();
  }

  _onLinkClosed(link) {
    this._requeue(link);
    if (link === this._probe) {
      this._probe = null;
      this._startTimers(); // try again later
      return;
    }
    if (link !== this._link) return; // a link we retired ourselves
    this._link = null;
    this.transport = this.conn = null;
    this._stopTimers();
    const probe = this._probe;
    this._probe = null;
    probe?.close();
    if (!link.welcomed) {
      if (link.kind === "websocket") this._wsFailures++;
      // SSE failing as well means the server is unreachable, not that WebSockets are blocked.
      else this._wsFailures = this._fallbackAttempts = 0;
    }
    if (this._closed) return;
    if (link.endedByBackend) {
      // As close() would, but said as an error so the app can tell the user.
      this.close();
      this._emit("error", heraldError("disconnected_by_backend", "the server ended this connection on the backend's request; not reconnecting"));
      return;
    }
    this._setState("disconnected");
    this._scheduleReconnect();
  }

  _startTimers() {
    this._stopTimers();
    const { pingMs, wsProbeMs } = this.options;
    if (pingMs > 0) {
      this._pingTimer = setInterval(() => {
        const link = this._link;
        if (link) this._request({ type: "ping" }, link).catch((e) => { if (e.code === "timeout") link.close(); });
      }, pingMs);
    }
    if (this.transport === "sse" && this.transports.includes("websocket") && wsProbeMs > 0) {
      this._probeTimer = setTimeout(() => { this._probe = this._openWebSocket(); }, wsProbeMs);
    }
  }

  _stopTimers() {
    clearInterval(this._pingTimer);
    clearTimeout(this._probeTimer);
  }
}

export default Herald;
