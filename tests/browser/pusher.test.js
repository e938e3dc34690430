// The Pusher protocol with real, unmodified clients: pusher-js 8 in Node against two gateways on NATS, the
// `pusher` server SDK from npm for every HTTP API call and for authorizing channels in a tiny backend.
import { test, describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { skipReason, startCluster } from "./lib/cluster.js";
import {
  APPS, pusherConfig, serverSdk, startAuthBackend, startWebhookReceiver, client, next, subscribed, collect, until,
  rawCall,
} from "./lib/pusher.js";

const skip = skipReason({ browser: false });
if (skip) {
  console.log(`# pusher tests skipped: ${skip}`);
  test("pusher tests", { skip }, () => {});
}

describe("Pusher protocol", { skip: !!skip }, () => {
  let cluster, backend, sdk, webhooks;
  const clients = [];
  const open = (options) => {
    const pusher = client(options.gateway ?? cluster.gatewayUrls[0], { backend, ...options });
    clients.push(pusher);
    return pusher;
  };

  before(async () => {
    webhooks = await startWebhookReceiver();
    const config = ["--config", pusherConfig({ webhookUrl: webhooks.url })];
    backend = await startAuthBackend();
    cluster = await startCluster("pusher", { gateways: 2, gatewayArgs: config, restArgs: config, dispatcherArgs: config });
    sdk = serverSdk(cluster.restUrl);
  });

  after(async () => {
    for (const pusher of clients) pusher.disconnect();
    await backend?.close();
    await webhooks?.close();
    await cluster?.stop();
  });

  it("public channels: the SDK's trigger reaches the app's subscribers, except the socket_id it names, and no other app's", async () => {
    const ann = open({});
    const bob = open({ gateway: cluster.gatewayUrls[1] });
    const other = open({ app: APPS[1] });
    const [annNews, bobNews, otherNews] = await Promise.all([
      subscribed(ann, "news"), subscribed(bob, "news"), subscribed(other, "news"),
    ]);
    assert.match(ann.connection.socket_id, /^\d+\.\d+$/);
    const annSaw = collect(annNews, "story");
    const otherSaw = collect(otherNews, "story");
    const bobGets = next(bobNews, "story");
    const sent = await sdk.trigger("news", "story", { n: 1 }, { socket_id: ann.connection.socket_id });
    assert.equal(sent.status, 200);
    assert.deepEqual(await bobGets, { n: 1 });
    // The next event reaches ann first: the excluded one never came.
    const annGets = next(annNews, "story");
    await sdk.trigger(["news", "sports"], "story", { n: 2 });
    assert.deepEqual(await annGets, { n: 2 });
    assert.deepEqual(annSaw, [{ n: 2 }]);
    // App two's own event is the first its subscriber sees: app one's never reached it.
    const otherGets = next(otherNews, "story");
    await serverSdk(cluster.restUrl, APPS[1]).trigger("news", "story", { app: 2 });
    assert.deepEqual(await otherGets, { app: 2 });
    assert.deepEqual(otherSaw, [{ app: 2 }]);
  });

  it("batch_events and Laravel's event names (backslashes and all) arrive in order", async () => {
    const ann = open({});
    const orders = await subscribed(ann, "orders");
    const seen = collect(orders, "App\\Events\\OrderShipped");
    const res = await sdk.triggerBatch([1, 2, 3].map((n) => ({ channel: "orders", name: "App\\Events\\OrderShipped", data: { n } })));
    assert.equal(res.status, 200);
    await until("three batched events", () => seen.length === 3);
    assert.deepEqual(seen, [{ n: 1 }, { n: 2 }, { n: 3 }]);
  });

  it("cache channels: a late subscriber gets the last event (kept in JetStream), an empty one pusher:cache_miss", async () => {
    await sdk.trigger("cache-scores", "score", { home: 1 });
    await sdk.trigger("cache-scores", "score", { home: 2 });
    const late = open({});
    const scores = late.subscribe("cache-scores");
    assert.deepEqual(await next(scores, "score"), { home: 2 });
    const empty = late.subscribe("cache-nothing-yet");
    await next(empty, "pusher:cache_miss");
  });

  it("private channels: the backend's signature admits, a refusal or a forged one is a subscription_error", async () => {
    const ann = open({ user: "ann" });
    const room = await subscribed(ann, "private-room");
    const gets = next(room, "note");
    await sdk.trigger("private-room", "note", "hello");
    assert.equal(await gets, "hello");

    const refused = ann.subscribe("private-admin-panel");
    const error = await next(refused, "pusher:subscription_error");
    assert.equal(error.status, 403, JSON.stringify(error));

    // A client that signs for itself with the wrong secret is refused by the server.
    const forger = open({ authorize: () => ({ auth: `${APPS[0].key}:${"0".repeat(64)}` }) });
    const forged = forger.subscribe("private-room");
    const serverSaid = await next(forged, "pusher:subscription_error");
    assert.equal(serverSaid.type, "AuthError");
    assert.equal(serverSaid.status, 401);
    assert.equal(forged.subscribed, false);
  });

  it("client events go to the channel's other members, never back to the sender; on a public channel they are refused", async () => {
    const ann = open({ user: "ann" });
    const bob = open({ user: "bob", gateway: cluster.gatewayUrls[1] });
    const [annChat, bobChat] = await Promise.all([subscribed(ann, "private-chat"), subscribed(bob, "private-chat")]);
    const annSaw = collect(annChat, "client-typing");
    const bobGets = next(bobChat, "client-typing");
    assert.equal(annChat.trigger("client-typing", { who: "ann" }), true);
    assert.deepEqual(await bobGets, { who: "ann" });
    const annGets = next(annChat, "client-typing");
    bobChat.trigger("client-typing", { who: "bob" });
    assert.deepEqual(await annGets, { who: "bob" });
    assert.deepEqual(annSaw, [{ who: "bob" }]);

    const lobby = await subscribed(ann, "lobby");
    const refusal = next(ann.connection, "error");
    lobby.trigger("client-wave", {});
    const error = await refusal;
    assert.match(error.data.message, /private and presence channels only/);
  });

  it("presence across two gateways: members, member_added once per user, and member_removed when a gateway is SIGKILLed", async () => {
    const cara = open({ user: "cara" });
    const cara2 = open({ user: "cara" });
    const dave = open({ user: "dave", gateway: cluster.gatewayUrls[1] });
    const daveRoom = await subscribed(dave, "presence-team");
    const added = collect(daveRoom, "pusher:member_added");
    // cara's two connections join at once: she is announced once.
    const [, caraRoom2] = await Promise.all([subscribed(cara, "presence-team"), subscribed(cara2, "presence-team")]);
    await until("cara announced", () => added.length === 1);
    // An event sent after the joins arrives after any announcement they made.
    const synced = next(daveRoom, "sync");
    await sdk.trigger("presence-team", "sync", {});
    await synced;
    assert.deepEqual(added, [{ id: "cara", info: { name: "CARA" } }]);
    assert.equal(caraRoom2.members.count, 2);
    assert.deepEqual(caraRoom2.members.me, { id: "cara", info: { name: "CARA" } });
    assert.equal(daveRoom.members.count, 2);

    const users = await (await sdk.get({ path: "/channels/presence-team/users" })).json();
    assert.deepEqual(users.users.map((u) => u.id).sort(), ["cara", "dave"]);
    const info = await (await sdk.get({ path: "/channels/presence-team", params: { info: "user_count,subscription_count" } })).json();
    assert.deepEqual(info, { occupied: true, user_count: 2, subscription_count: 3 });
    const listed = await (await sdk.get({ path: "/channels", params: { filter_by_prefix: "presence-", info: "user_count" } })).json();
    assert.deepEqual(listed.channels["presence-team"], { user_count: 2 });

    // Both of cara's connections are on gateway 1: killing it removes her, once, from dave's view.
    const removed = next(daveRoom, "pusher:member_removed", 20000);
    await cluster.killGateway();
    assert.deepEqual(await removed, { id: "cara", info: { name: "CARA" } });
    assert.equal(daveRoom.members.count, 1);
    await until("the users endpoint forgot cara", async () => {
      const now = await (await sdk.get({ path: "/channels/presence-team/users" })).json();
      return JSON.stringify(now.users) === JSON.stringify([{ id: "dave" }]);
    });

    // pusher-js reconnects by itself once the gateway is back, subscribes again, and cara is back.
    const back = next(daveRoom, "pusher:member_added", 45000);
    await cluster.startGatewayAgain();
    assert.deepEqual(await back, { id: "cara", info: { name: "CARA" } });
    const caraRoom = cara.channel("presence-team");
    await until("cara's client resubscribed", () => caraRoom.subscribed && cara.connection.state === "connected", 45000);
    const gets = next(caraRoom, "update");
    await sdk.trigger("presence-team", "update", { after: "restart" });
    assert.deepEqual(await gets, { after: "restart" });
  });

  it("sign-in: the user's own events reach it, and terminate_connections closes its connections for good", async () => {
    const erin = open({ user: "erin", gateway: cluster.gatewayUrls[1] });
    erin.signin();
    await next(erin, "pusher:signin_success");
    const gets = next(erin.user, "direct", 10000);
    await sdk.sendToUser("erin", "direct", { hi: "erin" });
    assert.deepEqual(await gets, { hi: "erin" });

    const error = next(erin.connection, "error");
    const res = await sdk.terminateUserConnections("erin");
    assert.equal(res.status, 200);
    assert.equal((await error).data.code, 4009);
    await until("erin's connection closed", () => erin.connection.state !== "connected");
  });

  it("refusals are Pusher's: unknown key, stale timestamp, wrong body_md5, bad signature, oversized event, unknown app", async () => {
    const stranger = open({ app: { key: "no-such-key" } });
    // pusher-js reports the refusal during the handshake wrapped in its WebSocketError.
    const error = await next(stranger.connection, "error");
    assert.equal((error.error ?? error).data.code, 4001, JSON.stringify(error));

    const event = { name: "e", channels: ["news"], data: "{}" };
    const path = `/apps/${APPS[0].id}/events`;
    assert.equal((await rawCall(cluster.restUrl, "POST", path, event)).status, 200);
    const stale = await rawCall(cluster.restUrl, "POST", path, event, { timestamp: Math.floor(Date.now() / 1000) - 601 });
    assert.equal(stale.status, 401);
    assert.match(stale.text, /Timestamp expired/);
    const md5 = await rawCall(cluster.restUrl, "POST", path, event, { bodyMd5: "0".repeat(32) });
    assert.equal(md5.status, 401);
    assert.match(md5.text, /body_md5/);
    const forged = await rawCall(cluster.restUrl, "POST", path, event, { secret: "not-the-secret-at-all" });
    assert.equal(forged.status, 401);
    assert.match(forged.text, /Invalid signature/);
    const big = await rawCall(cluster.restUrl, "POST", path, { ...event, data: "x".repeat(10 * 1024 + 1) });
    assert.equal(big.status, 413);
    assert.match(big.text, /exceeds the allowed maximum \(10240 bytes\)/);
    const unknown = await rawCall(cluster.restUrl, "POST", "/apps/999/events", event);
    assert.equal(unknown.status, 404);
    const tooMany = await rawCall(cluster.restUrl, "POST", path, { ...event, channels: Array.from({ length: 101 }, (_, i) => `c${i}`) });
    assert.equal(tooMany.status, 400);
  });

  it("webhooks arrive in Pusher's format, signed so that the SDK's webhook() validates them", async () => {
    // Everything above happened: occupied channels, presence members coming and going, client events.
    const events = () => webhooks.received.flatMap((post) => {
      const hook = sdk.webhook({ headers: post.headers, rawBody: post.rawBody });
      assert.equal(hook.isValid(), true, `invalid signature on ${post.rawBody}`);
      return hook.getEvents();
    });
    const has = (want) => events().some((e) => Object.entries(want).every(([k, v]) => e[k] === v));
    await until("the webhook events of the tests above", () =>
      has({ name: "channel_occupied", channel: "orders" })
      && has({ name: "member_added", channel: "presence-team", user_id: "cara" })
      && has({ name: "member_removed", channel: "presence-team", user_id: "cara" })
      && has({ name: "client_event", channel: "private-chat", event: "client-typing" }));
    const typed = events().filter((e) => e.name === "client_event" && e.event === "client-typing");
    assert.deepEqual(typed.map((e) => JSON.parse(e.data)), [{ who: "ann" }, { who: "bob" }]);
    assert.match(typed[0].socket_id, /^\d+\.\d+$/);
    assert.equal(webhooks.received[0].headers["x-pusher-key"], APPS[0].key);
    // Users' own channels are not reported; app two's webhook is not configured, so nothing of it here.
    assert.equal(events().some((e) => e.channel?.startsWith("#")), false);
    // A tampered body fails the SDK's check.
    const post = webhooks.received[0];
    assert.equal(sdk.webhook({ headers: post.headers, rawBody: post.rawBody.replace("}", " }") }).isValid(), false);
  });
});
