// Fake WebSocket, EventSource and fetch that let unit tests play the server's side of the protocol.

/** Poll `cond` until it is truthy or `ms` runs out; test-side waiting with a deadline, never a bare sleep. */
export async function waitFor(cond, ms = 2000, what = "condition") {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = cond();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** The replies a well-behaved server gives; tests override `respond` to refuse or stay silent. */
export function defaultRespond(frame) {
  switch (frame.type) {
    case "ident": return { type: "ok", id: frame.id, user: frame.auth.username ?? frame.auth.token ?? "someone" };
    case "join": case "leave": return { type: "ok", id: frame.id };
    case "ping": return { type: "pong", id: frame.id };
    default: return { type: "error", id: frame.id, code: "bad_request", message: "unknown frame" };
  }
}

/**
 * A fresh set of fakes per test, with the sockets and streams they created and the frames received.
 * `respond(frame, transport)` answers client frames: a frame to reply with, or null for silence.
 */
export function makeFakes() {
  const world = { sockets: [], sources: [], posts: [], respond: defaultRespond, nextConn: 1 };

  class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      world.sockets.push(this);
    }
    send(data) {
      const frame = JSON.parse(data);
      this.sent.push(frame);
      const reply = world.respond(frame, "websocket");
      // Replies arrive later, as they would over a network.
      if (reply) setTimeout(() => this.readyState === 1 && this.push(reply), 0);
    }
    close() {
      if (this.readyState === 3) return;
      this.readyState = 3;
      setTimeout(() => this.onclose?.({ code: 1000 }), 0);
    }
    // ---- the server's side ----
    accept(conn = `ws-${world.nextConn++}`) {
      this.readyState = 1;
      this.onopen?.({});
      this.push({ type: "welcome", conn, heartbeat_ms: 25000 });
      return conn;
    }
    push(frame) {
      this.onmessage?.({ data: typeof frame === "string" ? frame : JSON.stringify(frame) });
    }
    drop(code = 1006) {
      this.readyState = 3;
      if (code === 1006) this.onerror?.({});
      this.onclose?.({ code });
    }
  }

  class FakeEventSource {
    constructor(url) {
      this.url = url;
      this.closed = false;
      world.sources.push(this);
    }
    close() { this.closed = true; }
    // ---- the server's side ----
    accept(conn = `sse-${world.nextConn++}`) {
      this.conn = conn;
      this.secret = `secret-of-${conn}`;
      this.push({ type: "welcome", conn, heartbeat_ms: 25000, secret: this.secret });
      return conn;
    }
    push(frame) {
      if (!this.closed) this.onmessage?.({ data: typeof frame === "string" ? frame : JSON.stringify(frame) });
    }
    drop() { this.onerror?.({}); }
  }

  async function fakeFetch(url, init) {
    const frame = JSON.parse(init.body);
    const secret = init.headers?.["X-Herald-Secret"];
    world.posts.push({ url, method: init.method, frame, secret });
    const conn = decodeURIComponent(url.split("/").pop());
    // As the server does: an unknown connection and a wrong secret get the same 404.
    if (!world.sources.some((s) => s.conn === conn && s.secret === secret && !s.closed)) {
      return { status: 404, ok: false, text: async () => JSON.stringify({ error: { code: "not_found", message: "no such connection" } }) };
    }
    const reply = world.respond(frame, "sse");
    return { status: 200, ok: true, text: async () => (reply ? JSON.stringify(reply) : "") };
  }

  return { world, WebSocket: FakeWebSocket, EventSource: FakeEventSource, fetch: fakeFetch };
}
