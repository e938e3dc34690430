// Browser tests of the client library against real processes: delivery to channels and users, and the SSE fallback.
import { test, describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { skipReason, startCluster, rest, postJson, freePort } from "./lib/cluster.js";
import { launch, clientPage, identAndJoin, waitForEvent, eventsWithId } from "./lib/browser.js";

const skip = skipReason();
if (skip) {
  console.log(`# browser tests skipped: ${skip}`);
  // One visible skipped test, so the summary says the suite was skipped rather than empty.
  test("browser tests", { skip }, () => {});
}

describe("herald.js in chromium", { skip: !!skip }, () => {
  let cluster, browser;
  const pages = [];

  before(async () => {
    cluster = await startCluster("client");
    browser = await launch();
  });

  after(async () => {
    for (const page of pages) {
      // The page's own account of what happened, next to the servers' logs, when something failed.
      if (page.consoleLines.length) console.log(`# ${page.url()}:\n# ${page.consoleLines.join("\n# ")}`);
    }
    await browser?.close();
    await cluster?.stop();
  });

  const open = async (options) => {
    const page = await clientPage(browser, cluster.gatewayUrl, options);
    pages.push(page);
    return page;
  };

  it("two users in one channel both get a channel event; a user event reaches only its user", async () => {
    // One token from the demo endpoint, one from the REST API, as a backend would mint it.
    const alice = await postJson(`${cluster.gatewayUrl}/demo/token`, { user: "alice" });
    assert.equal(alice.status, 200, JSON.stringify(alice.body));
    const bob = await rest(cluster, "/v1/tokens", { user: "bob", channels: ["*"], ttl_secs: 600 });
    assert.equal(bob.status, 200, JSON.stringify(bob.body));

    const pageA = await open();
    const pageB = await open();
    assert.equal((await identAndJoin(pageA, alice.body.token, ["room"])).user, "alice");
    assert.equal((await identAndJoin(pageB, bob.body.token, ["room"])).user, "bob");

    const toRoom = await rest(cluster, "/v1/notify", { event: "MESSAGE:NEW", targets: { channels: ["room"] }, payload: { text: "hello room" } });
    assert.equal(toRoom.status, 202, JSON.stringify(toRoom.body));
    for (const page of [pageA, pageB]) {
      const got = await waitForEvent(page, toRoom.body.id);
      assert.deepEqual(got.payload, { text: "hello room" });
      assert.equal(got.meta.event, "MESSAGE:NEW");
      assert.deepEqual(got.meta.via.channels, ["room"]);
    }

    const toBob = await rest(cluster, "/v1/notify/user/bob", { event: "DIRECT", payload: { secret: 42 } });
    assert.equal(toBob.status, 202, JSON.stringify(toBob.body));
    const direct = await waitForEvent(pageB, toBob.body.id);
    assert.deepEqual(direct.payload, { secret: 42 });
    assert.deepEqual(direct.meta.via.users, ["bob"]);

    // Alice must not get Bob's event: once a later event has reached her, the earlier one never will.
    const marker = await rest(cluster, "/v1/notify/channel/room", { event: "MARKER", payload: null });
    assert.equal(marker.status, 202, JSON.stringify(marker.body));
    await waitForEvent(pageA, marker.body.id);
    assert.deepEqual(await eventsWithId(pageA, toBob.body.id), []);
  });

  it("an event for a user and a channel reaches a connection once, via both", async () => {
    const carol = await postJson(`${cluster.gatewayUrl}/demo/token`, { user: "carol" });
    const page = await open();
    await identAndJoin(page, carol.body.token, ["both"]);
    const both = await rest(cluster, "/v1/notify", { event: "TWICE", targets: { users: ["carol"], channels: ["both"] }, payload: 1 });
    assert.equal(both.status, 202, JSON.stringify(both.body));
    const got = await waitForEvent(page, both.body.id);
    assert.deepEqual(got.meta.via, { users: ["carol"], channels: ["both"] });
    const marker = await rest(cluster, "/v1/notify/user/carol", { event: "MARKER", payload: null });
    await waitForEvent(page, marker.body.id);
    assert.equal((await eventsWithId(page, both.body.id)).length, 1);
  });

  it("a page whose WebSocket is blocked falls back to SSE and still gets events", async () => {
    const closedPort = await freePort();
    const page = await open({ wsUrl: `ws://127.0.0.1:${closedPort}/ws` });
    const posts = [];
    page.on("request", (r) => { if (r.method() === "POST" && r.url().includes("/sse/")) posts.push(r.url()); });
    const dave = await postJson(`${cluster.gatewayUrl}/demo/token`, { user: "dave" });
    const session = await identAndJoin(page, dave.body.token, ["room"]);
    assert.equal(session.transport, "sse");
    assert.ok(posts.length >= 2, `ident and join should be POSTed to /sse/{conn}, saw ${JSON.stringify(posts)}`);

    const toRoom = await rest(cluster, "/v1/notify/channel/room", { event: "OVER:SSE", payload: { ok: true } });
    assert.equal(toRoom.status, 202, JSON.stringify(toRoom.body));
    const got = await waitForEvent(page, toRoom.body.id);
    assert.deepEqual(got.payload, { ok: true });
    assert.deepEqual(got.meta.via.channels, ["room"]);
    const toDave = await rest(cluster, "/v1/notify/user/dave", { event: "OVER:SSE", payload: "direct" });
    assert.equal((await waitForEvent(page, toDave.body.id)).payload, "direct");
    // Requests work over SSE too: a ping's pong comes back in the POST's response body.
    assert.equal(typeof (await page.evaluate(() => window.h.ping())), "number");
  });
});
