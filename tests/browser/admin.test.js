// Browser test of the admin console against two gateways on NATS: sign in with an API key, read
// the cluster, find a channel and its members, publish from the form and watch the live tail and a
// client page get it, disconnect a user and see its page lose the connection; screenshots saved.
import { test, describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { skipReason, startCluster, rest, OUTPUT } from "./lib/cluster.js";
import { launch, watch, clientPage, identAndJoin, waitForEvent } from "./lib/browser.js";

const skip = skipReason();
if (skip) {
  console.log(`# browser tests skipped: ${skip}`);
  test("browser tests", { skip }, () => {});
}

describe("admin console in chromium", { skip: !!skip }, () => {
  let cluster, browser, admin;
  const pages = [];

  before(async () => {
    cluster = await startCluster("admin", { gateways: 2, restArgs: ["--admin"] });
    browser = await launch();
    mkdirSync(OUTPUT, { recursive: true });
  });

  after(async () => {
    for (const page of pages) if (page.consoleLines.length) console.log(`# ${page.url()}:\n# ${page.consoleLines.join("\n# ")}`);
    await browser?.close();
    await cluster?.stop();
  });

  const shot = (name) => admin.screenshot({ path: join(OUTPUT, `admin-${name}.png`), fullPage: true });

  /** A client page on gateway `g`, identified as `user` and joined to `channels`. */
  async function client(g, user, channels) {
    const page = await clientPage(browser, cluster.gatewayUrls[g]);
    pages.push(page);
    const minted = await rest(cluster, "/v1/tokens", { user, channels: ["*"], ttl_secs: 600 });
    assert.equal(minted.status, 200, JSON.stringify(minted.body));
    await identAndJoin(page, minted.body.token, channels);
    return page;
  }

  it("signs in with an API key and shows both gateways with their connections", async () => {
    await client(0, "zoe", ["ops-room"]);
    await client(1, "yan", ["ops-room", "ops-other"]);
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    admin = watch(await context.newPage());
    pages.push(admin);
    await admin.goto(`${cluster.restUrl}/admin`);
    await admin.fill("#api-key", "not-the-key");
    await admin.click("#enter");
    await admin.waitForSelector("#login-error:has-text('not accepted')");
    await admin.fill("#api-key", cluster.apiKey);
    await admin.click("#enter");
    await admin.waitForSelector("#console:not([hidden])");
    for (const url of cluster.gatewayUrls) {
      await admin.waitForSelector(`#gateways tr:has(td:text-is("${url}")) td.connections:text-is("1")`, { timeout: 10000 });
    }
    assert.match(await admin.textContent("#cluster-status"), /NATS connected/);
    assert.match(await admin.textContent("#cluster-status"), /2 gateways/);
    assert.equal(await admin.locator("#dispatchers tbody tr").count(), 1);
    await shot("overview");
  });

  it("finds a channel by prefix and lists its members", async () => {
    await admin.fill("#channel-prefix", "ops-");
    await admin.click("#channel-search button");
    await admin.waitForSelector('#channels li[data-channel="ops-room"]');
    assert.equal(await admin.locator("#channels li[data-channel]").count(), 2);
    await admin.click('#channels li[data-channel="ops-room"]');
    await admin.waitForSelector("#channel-summary:has-text('2 connections, 2 users')");
    const members = await admin.locator("#members li").allTextContents();
    assert.deepEqual(members.sort(), ["yan", "zoe"]);
    await shot("channel");
  });

  it("publishes from the form; the live tail, which starts with the channel's history, and a member's page both get the event", async () => {
    const zoe = pages.find((p) => p !== admin);
    const earlier = await rest(cluster, "/v1/notify/channel/ops-room", { event: "ADMIN:EARLIER", payload: "before the tail" });
    assert.equal(earlier.status, 202, JSON.stringify(earlier.body));
    await admin.click("#tail-this");
    await admin.waitForSelector("#tail-status:has-text('following #ops-room')", { timeout: 10000 });
    await admin.waitForSelector(`#tail li[data-id="${earlier.body.id}"]:has-text("earlier ADMIN:EARLIER")`);
    await admin.fill("#publish-event", "ADMIN:NOTICE");
    await admin.fill("#publish-payload", '{"text":"maintenance at noon"}');
    await admin.click("#publish-form button");
    const accepted = await admin.waitForSelector("#publish-result:has-text('accepted as')");
    const id = (await accepted.textContent()).replace("accepted as ", "").trim();
    await admin.waitForSelector(`#tail li[data-id="${id}"]:has-text("maintenance at noon")`, { timeout: 10000 });
    const got = await waitForEvent(zoe, id);
    assert.deepEqual(got.payload, { text: "maintenance at noon" });
    await shot("tail");
  });

  it("disconnects a user: its page loses the connection", async () => {
    const yan = pages[1];
    await admin.fill("#user-name", "yan");
    await admin.click("#user-form button");
    await admin.waitForSelector("#user-summary:has-text('yan: 1 connections')");
    await admin.click("#disconnect");
    await admin.waitForSelector("#disconnect-result:has-text('closing 1 connections of yan')");
    await yan.waitForFunction(() => window.states.some((s) => s.state !== "connected"), null, { timeout: 10000 });
    // Presence follows once the gateway reported the close: look the user up until it says so.
    const deadline = Date.now() + 10000;
    for (;;) {
      await admin.click("#user-form button");
      if (/yan: not connected/.test(await admin.textContent("#user-summary"))) break;
      assert.ok(Date.now() < deadline, `still: ${await admin.textContent("#user-summary")}`);
      await admin.waitForTimeout(200);
    }
    await shot("disconnected");
  });
});
