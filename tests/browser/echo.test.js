// Laravel Echo 2 with pusher-js 8 in headless Chromium, as a Laravel page uses them: the page's origin is the
// app's backend (which answers /broadcasting/auth with the `pusher` SDK), the WebSocket goes to Herald.
import { test, describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { skipReason, startCluster } from "./lib/cluster.js";
import { launch, watch } from "./lib/browser.js";
import { APPS, pusherConfig, serverSdk, startAuthBackend, client, next, subscribed, until } from "./lib/pusher.js";

const skip = skipReason();
if (skip) {
  console.log(`# browser tests skipped: ${skip}`);
  test("Laravel Echo tests", { skip }, () => {});
}

describe("Laravel Echo in Chromium", { skip: !!skip }, () => {
  let cluster, backend, browser, page, sdk, bob;

  before(async () => {
    backend = await startAuthBackend();
    const config = ["--config", pusherConfig()];
    // The page is served by the app's backend: Herald admits that origin, as a deployment configures it.
    cluster = await startCluster("echo", {
      gatewayArgs: [...config, "--allowed-origins", backend.url],
      restArgs: config,
    });
    sdk = serverSdk(cluster.restUrl);
    browser = await launch();
    page = watch(await browser.newPage());
    await page.goto(`${backend.url}/page`);
    await page.addScriptTag({ url: "/pusher.js" });
    await page.addScriptTag({ url: "/echo.js" });
    const ws = new URL(cluster.gatewayUrl);
    await page.evaluate(({ key, host, port }) => {
      window.seen = [];
      window.Echo = new Echo.default({
        broadcaster: "pusher", key, cluster: "local", wsHost: host, wsPort: port, forceTLS: false,
        enabledTransports: ["ws"], authEndpoint: "/broadcasting/auth", auth: { headers: { "x-user": "ann" } },
      });
    }, { key: APPS[0].key, host: ws.hostname, port: Number(ws.port) });
  });

  after(async () => {
    if (page?.consoleLines.length) console.log(`# page:\n# ${page.consoleLines.join("\n# ")}`);
    bob?.disconnect();
    await browser?.close();
    await backend?.close();
    await cluster?.stop();
  });

  it("a public channel's event with a custom name (broadcastAs) reaches listen('.name')", async () => {
    await page.evaluate(() => new Promise((resolve) => {
      window.Echo.channel("news").listen(".story.posted", (e) => window.seen.push({ story: e })).subscribed(resolve);
    }));
    assert.equal((await sdk.trigger("news", "story.posted", { title: "hi" })).status, 200);
    await page.waitForFunction(() => window.seen.some((s) => s.story), null, { timeout: 10000 });
    assert.deepEqual(await page.evaluate(() => window.seen.find((s) => s.story)), { story: { title: "hi" } });
  });

  it("a private channel's Laravel event reaches Echo's listen()", async () => {
    await page.evaluate(() => new Promise((resolve) => {
      window.Echo.private("orders.7")
        .listen("OrderShipped", (e) => window.seen.push({ shipped: e }))
        .subscribed(resolve);
    }));
    const res = await sdk.trigger("private-orders.7", "App\\Events\\OrderShipped", { order: { id: 7 } });
    assert.equal(res.status, 200);
    await page.waitForFunction(() => window.seen.some((s) => s.shipped), null, { timeout: 10000 });
    assert.deepEqual(await page.evaluate(() => window.seen.find((s) => s.shipped)), { shipped: { order: { id: 7 } } });
  });

  it("presence: here(), joining() and leaving() see another user, and whispers go both ways", async () => {
    const here = await page.evaluate(() => new Promise((resolve) => {
      window.team = window.Echo.join("team")
        .here(resolve)
        .joining((user) => window.seen.push({ joining: user }))
        .leaving((user) => window.seen.push({ leaving: user }))
        .listenForWhisper("typing", (e) => window.seen.push({ whisper: e }));
    }));
    assert.deepEqual(here, [{ name: "ANN" }]);

    bob = client(cluster.gatewayUrl, { user: "bob", backend });
    const team = await subscribed(bob, "presence-team");
    await page.waitForFunction(() => window.seen.some((s) => s.joining), null, { timeout: 10000 });
    assert.deepEqual(await page.evaluate(() => window.seen.find((s) => s.joining)), { joining: { name: "BOB" } });
    assert.equal(team.members.count, 2);

    const whispered = next(team, "client-typing");
    await page.evaluate(() => window.team.whisper("typing", { from: "ann" }));
    assert.deepEqual(await whispered, { from: "ann" });
    team.trigger("client-typing", { from: "bob" });
    await page.waitForFunction(() => window.seen.some((s) => s.whisper), null, { timeout: 10000 });
    assert.deepEqual(await page.evaluate(() => window.seen.find((s) => s.whisper)), { whisper: { from: "bob" } });

    bob.disconnect();
    await page.waitForFunction(() => window.seen.some((s) => s.leaving), null, { timeout: 10000 });
    assert.deepEqual(await page.evaluate(() => window.seen.find((s) => s.leaving)), { leaving: { name: "BOB" } });
  });

  it("a channel the backend refuses reports Echo's error(), and the page's socket stays up", async () => {
    const error = await page.evaluate(() => new Promise((resolve) => {
      window.Echo.private("admin-panel").error((e) => resolve(e));
    }));
    assert.equal(error.status, 403, JSON.stringify(error));
    await until("the connection is still connected", () =>
      page.evaluate(() => window.Echo.connector.pusher.connection.state === "connected"));
  });
});
