// Unit tests of the Herald client against fake transports: requests, events, reconnection, fallback.
import { test, afterEach } from "node:test";
import assert from "node:assert/strict";
import { Herald } from "../herald.js";
import { makeFakes, waitFor, defaultRespond } from "./fakes.js";

// Close every client after its test, failed or not, so no retry timer keeps the process alive.
const clients = [];
afterEach(() => { while (clients.length) clients.pop().close(); });

/** A client wired to fresh fakes, reconnecting without delay, recording its states. */
function setup(options = {}) {
  const fakes = makeFakes();
  const h = new Herald("http://gw.test:8080", {
    WebSocket: fakes.WebSocket, EventSource: fakes.EventSource, fetch: fakes.fetch,
    random: () => 0, pingMs: 0, ...options,
  });
  clients.push(h);
  const states = [];
  h.on("state", (s) => states.push(s));
  return { h, world: fakes.world, states };
}

const lastSocket = (world) => world.sockets.at(-1);
const sentTypes = (ws) => ws.sent.map((f) => (f.channel ? `${f.type}:${f.channel}` : f.type));

test("URLs: /ws and /sse resolve against the base URL, options override them", () => {
  const { WebSocket } = makeFakes();
  const a = new Herald("http://gw.test:8080", { WebSocket });
  assert.equal(a.wsUrl, "ws://gw.test:8080/ws");
  assert.equal(a.sseUrl, "http://gw.test:8080/sse");
  const b = new Herald("https://example.org/herald", { WebSocket });
  assert.equal(b.wsUrl, "wss://example.org/herald/ws");
  assert.equal(b.sseUrl, "https://example.org/herald/sse");
  const c = new Herald("http://gw.test", { WebSocket, wsUrl: "ws://127.0.0.1:9/ws", sseUrl: "http://other/sse" });
  assert.equal(c.wsUrl, "ws://127.0.0.1:9/ws");
  assert.equal(c.sseUrl, "http://other/sse");
  for (const h of [a, b, c]) h.close();
  assert.throws(() => new Herald("http://gw.test", { WebSocket: null, EventSource: null, transports: ["websocket"] }), /no usable transport/);
});

test("requests made before the welcome go out after it, resolve with the ok frame, ids increase", async () => {
  const { h, world, states } = setup();
  const ident = h.ident({ token: "alice" });
  const join = h.join("chat");
  const ws = await waitFor(() => lastSocket(world), 1000, "a socket");
  assert.equal(ws.url, "ws://gw.test:8080/ws");
  assert.equal(ws.sent.length, 0);
  ws.accept("c-1");
  const ok = await ident;
  assert.deepEqual(ok, { type: "ok", id: 1, user: "alice" });
  assert.deepEqual(await join, { type: "ok", id: 2 });
  assert.deepEqual(ws.sent, [
    { type: "ident", id: 1, auth: { token: "alice" } },
    { type: "join", id: 2, channel: "chat" },
  ]);
  assert.equal(h.user, "alice");
  assert.equal(h.conn, "c-1");
  assert.equal(h.transport, "websocket");
  assert.deepEqual(states, ["connecting", "connected"]);
  assert.equal(h.state, "connected");
  h.close();
  assert.deepEqual(states, ["connecting", "connected", "disconnected"]);
});

test("an error frame rejects its request with code and message; the connection stays usable", async () => {
  const { h, world } = setup();
  world.respond = (f) => (f.type === "join" && f.channel === "private-x"
    ? { type: "error", id: f.id, code: "forbidden", message: "no grant for private-x" }
    : defaultRespond(f));
  (await waitFor(() => lastSocket(world))).accept();
  await h.ident({ username: "bob", password: "pw" });
  await assert.rejects(h.join("private-x"), (err) => {
    assert.equal(err.code, "forbidden");
    assert.equal(err.message, "no grant for private-x");
    assert.equal(err.frame.type, "error");
    return true;
  });
  assert.equal(typeof (await h.ping()), "number");
  assert.equal(world.sockets.length, 1);
  h.close();
});

test("publish resolves with the event id, rpc with the result; errors keep their codes", async () => {
  const { h, world } = setup();
  world.respond = (f) => {
    if (f.type === "publish") return f.channel === "chat"
      ? { type: "ok", id: f.id, event_id: "e-9" }
      : { type: "error", id: f.id, code: "forbidden", message: "join it first" };
    if (f.type === "rpc") return f.method === "calc.double"
      ? { type: "result", id: f.id, data: f.data * 2 }
      : { type: "error", id: f.id, code: "app_1001", message: "always fails" };
    return defaultRespond(f);
  };
  const ws = await waitFor(() => lastSocket(world));
  ws.accept();
  assert.deepEqual(await h.publish("chat", "MESSAGE:NEW", { text: "hi" }), { event_id: "e-9" });
  assert.deepEqual(ws.sent.at(-1), { type: "publish", id: 1, channel: "chat", event: "MESSAGE:NEW", payload: { text: "hi" } });
  await assert.rejects(h.publish("news", "X"), { code: "forbidden", message: "join it first" });
  assert.equal(await h.rpc("calc.double", 21), 42);
  assert.deepEqual(ws.sent.at(-1), { type: "rpc", id: 3, method: "calc.double", data: 21 });
  await assert.rejects(h.rpc("calc.fail"), { code: "app_1001", message: "always fails" });
  h.close();
});

test("an rpc has its own timeout; a publish or rpc in flight when the connection drops is not sent again", async () => {
  const { h, world } = setup();
  world.respond = (f) => (f.type === "rpc" || f.type === "publish" ? null : defaultRespond(f));
  (await waitFor(() => lastSocket(world))).accept();
  await h.ident({ token: "alice" });
  await assert.rejects(h.rpc("calc.slow", 1, { timeoutMs: 30 }), { code: "timeout", message: /within 30 ms/ });
  const publish = h.publish("chat", "M", 1);
  const rpc = h.rpc("calc.slow", 2);
  await waitFor(() => world.sockets[0].sent.filter((f) => f.type === "publish" || f.type === "rpc").length === 3);
  world.sockets[0].drop();
  await assert.rejects(publish, { code: "disconnected", message: /may or may not/ });
  await assert.rejects(rpc, { code: "disconnected" });
  const ws2 = await waitFor(() => world.sockets[1]);
  ws2.accept();
  await waitFor(() => h.state === "connected");
  assert.deepEqual(sentTypes(ws2), ["ident"]);
  h.close();
});

test("an event another client published carries meta.from", async () => {
  const { h, world } = setup();
  const ws = await waitFor(() => lastSocket(world));
  ws.accept();
  await waitFor(() => h.state === "connected");
  const got = [];
  h.on("M", (payload, meta) => got.push(meta));
  ws.push({ type: "event", id: "p1", event: "M", payload: 1, via: { channels: ["chat"] }, from: { user: "bob" } });
  assert.deepEqual(got, [{ id: "p1", event: "M", via: { users: [], channels: ["chat"] }, from: { user: "bob" } }]);
  h.close();
});

test("a request with no reply fails with code timeout", async () => {
  const { h, world } = setup({ timeoutMs: 40 });
  world.respond = () => null;
  (await waitFor(() => lastSocket(world))).accept();
  await assert.rejects(h.join("chat"), { code: "timeout" });
  h.close();
});

test("events reach their handlers and * with meta {id, event, via}; odd frames are ignored", async () => {
  const { h, world } = setup();
  const ws = await waitFor(() => lastSocket(world));
  ws.accept();
  await waitFor(() => h.state === "connected");
  const got = [], all = [], errors = [];
  const off = h.on("MESSAGE:NEW", (payload, meta) => got.push([payload, meta]));
  h.on("*", (payload, meta) => all.push(meta.event));
  h.on("error", (e) => errors.push(e.code));

  ws.push({ type: "event", id: "e1", event: "MESSAGE:NEW", payload: { text: "hi" }, via: { users: ["alice"], channels: ["chat"] } });
  ws.push({ type: "event", id: "e2", event: "OTHER", payload: 7 });
  ws.push({ type: "event", id: "e1", event: "MESSAGE:NEW", payload: { text: "hi" }, via: { channels: ["chat"] } }); // a duplicate
  ws.push({ type: "history", items: [] }); // a frame type from a newer server
  ws.push("not json at all");
  ws.push({ type: "ok", id: 999 }); // a reply to nothing
  ws.push({ type: "error", code: "rate_limited", message: "slow down" });
  off();
  ws.push({ type: "event", id: "e3", event: "MESSAGE:NEW", payload: {}, via: {} });

  assert.deepEqual(got, [[{ text: "hi" }, { id: "e1", event: "MESSAGE:NEW", via: { users: ["alice"], channels: ["chat"] } }]]);
  assert.deepEqual(all, ["MESSAGE:NEW", "OTHER", "MESSAGE:NEW"]);
  assert.deepEqual(errors, ["rate_limited"]);
  assert.equal(h.state, "connected");
  h.close();
});

test("a throwing handler does not keep the others from their event", async () => {
  const { h, world } = setup();
  const ws = await waitFor(() => lastSocket(world));
  ws.accept();
  const seen = [], rethrown = [];
  // The client rethrows a handler's error in a microtask; catch it there instead of failing the run.
  const original = globalThis.queueMicrotask;
  globalThis.queueMicrotask = (fn) => original(() => { try { fn(); } catch (e) { rethrown.push(e.message); } });
  try {
    h.on("X", () => { throw new Error("app bug"); });
    h.on("X", (p) => seen.push(p));
    ws.push({ type: "event", id: "1", event: "X", payload: 1 });
    assert.deepEqual(seen, [1]);
    await waitFor(() => rethrown.length);
    assert.deepEqual(rethrown, ["app bug"]);
  } finally {
    globalThis.queueMicrotask = original;
  }
  h.close();
});

test("after a reconnect the client idents and re-joins by itself, and events flow again", async () => {
  const { h, world, states } = setup();
  (await waitFor(() => lastSocket(world))).accept("first");
  await h.ident({ token: "alice" });
  await h.join("chat");
  await h.join("news");
  await h.join("tmp");
  await h.leave("tmp");
  const got = [];
  h.on("MESSAGE:NEW", (p, meta) => got.push([p, meta.via.channels]));

  world.sockets[0].drop();
  assert.equal(h.state, "disconnected");
  const ws2 = await waitFor(() => world.sockets[1], 1000, "a second socket");
  ws2.accept("second");
  await waitFor(() => h.state === "connected" && h.conn === "second");
  assert.deepEqual(sentTypes(ws2), ["ident", "join:chat", "join:news"]);
  assert.deepEqual(ws2.sent[0].auth, { token: "alice" });
  ws2.push({ type: "event", id: "a", event: "MESSAGE:NEW", payload: "back", via: { channels: ["chat"] } });
  assert.deepEqual(got, [["back", ["chat"]]]);
  assert.deepEqual(states, ["connecting", "connected", "disconnected", "connecting", "connected"]);
  h.close();
});

test("after a reconnect it asks for what it missed from the last positions, and says what was recovered", async () => {
  const { h, world } = setup();
  world.respond = (frame) => {
    if (frame.type === "ident") return { type: "ok", id: frame.id, user: "alice", pos: "u-0", ...(frame.since && { recovered: frame.since === "u-1" }) };
    if (frame.type === "join") return { type: "ok", id: frame.id, channel: frame.channel, pos: `${frame.channel}-top`, ...(frame.since && { recovered: frame.channel === "chat" }) };
    return defaultRespond(frame);
  };
  (await waitFor(() => lastSocket(world))).accept("first");
  await h.ident({ token: "alice" });
  await h.join("chat");
  await h.join("news");
  const ws1 = world.sockets[0];
  ws1.push({ type: "event", id: "e1", event: "M", payload: 1, via: { users: ["alice"], channels: ["chat"] }, pos: { users: { alice: "u-1" }, channels: { chat: "chat-1" } } });
  const resubscribed = [];
  const recovered = [];
  h.on("resubscribed", (r) => resubscribed.push(r));
  h.on("recovered", (r) => recovered.push(r));

  ws1.drop();
  const ws2 = await waitFor(() => world.sockets[1], 1000, "a second socket");
  ws2.accept("second");
  await waitFor(() => h.state === "connected");
  assert.deepEqual(ws2.sent.map((f) => [f.type, f.channel ?? null, f.since ?? null]), [
    ["ident", null, "u-1"], ["join", "chat", "chat-1"], ["join", "news", "news-top"],
  ]);
  assert.deepEqual(resubscribed.sort((a, b) => a.channel.localeCompare(b.channel)), [
    { channel: "chat", recovered: true }, { channel: "news", recovered: false },
  ]);
  assert.deepEqual(recovered, [{ recovered: false, user: true, channels: { chat: true, news: false } }]);

  // Where nothing was recovered, the stream's top is where the next reconnect goes on from.
  ws2.drop();
  const ws3 = await waitFor(() => world.sockets[2], 1000, "a third socket");
  ws3.accept("third");
  await waitFor(() => h.state === "connected");
  assert.deepEqual(ws3.sent.find((f) => f.channel === "news").since, "news-top");
  assert.equal(ws3.sent.find((f) => f.channel === "chat").since, "chat-1");
  h.close();
});

test("a connection the backend ended (4001) is not reopened: state disconnected, an error says why", async () => {
  const { h, world, states } = setup();
  (await waitFor(() => lastSocket(world))).accept("first");
  await h.ident({ token: "alice" });
  const errors = [];
  h.on("error", (e) => errors.push(e.code));
  world.sockets[0].drop(4001);
  await waitFor(() => errors.length === 1);
  assert.deepEqual(errors, ["disconnected_by_backend"]);
  assert.equal(h.state, "disconnected");
  await new Promise((resolve) => setTimeout(resolve, 20)); // a reconnect would open a socket at once (random: 0)
  assert.equal(world.sockets.length, 1);
  assert.deepEqual(states, ["connecting", "connected", "disconnected"]);
});

test("connected is announced only once ident and joins are restored", async () => {
  const { h, world } = setup();
  (await waitFor(() => lastSocket(world))).accept();
  await h.ident({ token: "alice" });
  await h.join("chat");
  world.respond = (f) => (f.type === "join" ? null : defaultRespond(f)); // the next server is slow to answer the join
  world.sockets[0].drop();
  const ws2 = await waitFor(() => world.sockets[1]);
  ws2.accept();
  const join = await waitFor(() => ws2.sent.find((f) => f.type === "join"));
  assert.equal(h.state, "connecting");
  ws2.push({ type: "ok", id: join.id });
  await waitFor(() => h.state === "connected");
  h.close();
});

test("a request pending when the connection drops is sent again after the restore", async () => {
  const { h, world } = setup();
  (await waitFor(() => lastSocket(world))).accept();
  await h.ident({ token: "alice" });
  world.respond = (f, _t) => (f.channel === "slow" && world.sockets.length === 1 ? null : defaultRespond(f));
  const join = h.join("slow");
  await waitFor(() => world.sockets[0].sent.some((f) => f.channel === "slow"));
  world.sockets[0].drop();
  const ws2 = await waitFor(() => world.sockets[1]);
  ws2.accept();
  assert.equal((await join).type, "ok");
  assert.deepEqual(sentTypes(ws2), ["ident", "join:slow"]);
  h.close();
});

test("an ident function is called again on every reconnect, to mint a fresh token", async () => {
  const { h, world } = setup();
  let minted = 0;
  const ident = h.ident(async () => ({ token: `t${++minted}` }));
  (await waitFor(() => lastSocket(world))).accept();
  await ident;
  world.sockets[0].drop();
  const ws2 = await waitFor(() => world.sockets[1]);
  ws2.accept();
  await waitFor(() => h.state === "connected");
  assert.deepEqual(ws2.sent[0].auth, { token: "t2" });
  h.close();
});

test("credentials refused after a reconnect: error event, state connected, nothing re-joined", async () => {
  const { h, world } = setup();
  (await waitFor(() => lastSocket(world))).accept();
  await h.ident({ token: "old" });
  await h.join("chat");
  const errors = [];
  h.on("error", (e) => errors.push(e.code));
  world.respond = (f) => (f.type === "ident" ? { type: "error", id: f.id, code: "unauthorized", message: "token expired" } : defaultRespond(f));
  world.sockets[0].drop();
  (await waitFor(() => world.sockets[1])).accept();
  await waitFor(() => h.state === "connected");
  assert.deepEqual(errors, ["unauthorized"]);
  assert.deepEqual(sentTypes(world.sockets[1]), ["ident"]);
  assert.equal(h.user, null);
  h.close();
});

test("two WebSocket attempts that never open lead to SSE, with frames POSTed to /sse/{conn}", async () => {
  const { h, world } = setup();
  const ident = h.ident({ token: "carol" });
  const join = h.join("chat");
  (await waitFor(() => world.sockets[0])).drop();
  (await waitFor(() => world.sockets[1])).drop();
  const es = await waitFor(() => world.sources[0], 1000, "an EventSource");
  assert.equal(es.url, "http://gw.test:8080/sse");
  es.accept("s-1");
  assert.equal((await ident).user, "carol");
  await join;
  // Each POST proves it owns the stream with the secret from the stream's welcome.
  assert.deepEqual(world.posts.map((p) => [p.method, p.url, p.frame.type, p.secret]), [
    ["POST", "http://gw.test:8080/sse/s-1", "ident", "secret-of-s-1"],
    ["POST", "http://gw.test:8080/sse/s-1", "join", "secret-of-s-1"],
  ]);
  assert.equal(h.transport, "sse");
  const got = [];
  h.on("MESSAGE:NEW", (p, meta) => got.push([p, meta.via]));
  es.push({ type: "event", id: "x", event: "MESSAGE:NEW", payload: { a: 1 }, via: { users: ["carol"], channels: [] } });
  assert.deepEqual(got, [[{ a: 1 }, { users: ["carol"], channels: [] }]]);
  assert.equal(world.sockets.length, 2);
  h.close();
});

test("a WebSocket that hangs without answering counts as a failed attempt", async () => {
  const { h, world } = setup({ timeoutMs: 30 });
  const es = await waitFor(() => world.sources[0], 2000, "fallback to SSE");
  assert.equal(world.sockets.length, 2);
  es.accept();
  await waitFor(() => h.state === "connected" && h.transport === "sse");
  h.close();
});

test("when SSE fails too the server is down: the next attempt is a WebSocket again", async () => {
  const { h, world } = setup();
  (await waitFor(() => world.sockets[0])).drop();
  (await waitFor(() => world.sockets[1])).drop();
  (await waitFor(() => world.sources[0])).drop();
  (await waitFor(() => world.sockets[2], 1000, "a WebSocket after SSE failed")).accept();
  await waitFor(() => h.state === "connected" && h.transport === "websocket");
  h.close();
});

test("an SSE connection the server forgot (404 on POST) is replaced and restored", async () => {
  const { h, world } = setup({ transports: ["sse"] });
  const es1 = await waitFor(() => world.sources[0]);
  es1.accept("s-1");
  await h.ident({ token: "dave" });
  await h.join("chat");
  es1.conn = "forgotten"; // the gateway restarted and no longer knows s-1
  const ping = h.ping();
  const es2 = await waitFor(() => world.sources[1], 1000, "a new EventSource");
  assert.ok(es1.closed);
  es2.accept("s-2");
  await ping;
  assert.deepEqual(world.posts.slice(-3).map((p) => [p.url.split("/").pop(), p.frame.type]), [["s-2", "ident"], ["s-2", "join"], ["s-2", "ping"]]);
  h.close();
});

test("on SSE the client later tries a WebSocket and moves over without losing or doubling events", async () => {
  const { h, world, states } = setup({ wsProbeMs: 20 });
  (await waitFor(() => world.sockets[0])).drop();
  (await waitFor(() => world.sockets[1])).drop();
  const es = await waitFor(() => world.sources[0]);
  es.accept();
  await h.ident({ token: "erin" });
  await h.join("chat");
  const got = [];
  h.on("*", (_p, meta) => got.push(meta.id));

  const probe = await waitFor(() => world.sockets[2], 1000, "a probing WebSocket");
  probe.accept("ws-back");
  await waitFor(() => h.transport === "websocket");
  assert.deepEqual(sentTypes(probe), ["ident", "join:chat"]);
  assert.ok(es.closed);
  assert.equal(h.conn, "ws-back");
  assert.deepEqual(states.slice(-2), ["connected", "connected"]);
  probe.push({ type: "event", id: "same", event: "E", payload: 1, via: { channels: ["chat"] } });
  probe.push({ type: "event", id: "same", event: "E", payload: 1, via: { channels: ["chat"] } });
  assert.deepEqual(got, ["same"]);
  h.close();
});

test("a dead server that keeps the socket open is noticed by ping", async () => {
  const { h, world } = setup({ pingMs: 20, timeoutMs: 40 });
  (await waitFor(() => world.sockets[0])).accept();
  await waitFor(() => h.state === "connected");
  world.respond = () => null;
  await waitFor(() => world.sockets[1], 2000, "a reconnect after unanswered pings");
  h.close();
});

test("close() fails pending requests with code closed and stops reconnecting", async () => {
  const { h, world, states } = setup();
  world.respond = () => null;
  (await waitFor(() => world.sockets[0])).accept();
  const join = h.join("chat");
  h.close();
  await assert.rejects(join, { code: "closed" });
  await assert.rejects(h.join("x"), { code: "closed" });
  world.sockets[0].drop();
  await new Promise((r) => setTimeout(r, 20)); // a reconnect would have happened by now (delay 0)
  assert.equal(world.sockets.length, 1);
  assert.equal(states.at(-1), "disconnected");
});
