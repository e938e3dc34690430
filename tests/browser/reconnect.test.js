// Browser test of recovery: the gateway is killed and restarted, and the page is back in its channel on its own,
// with every event sent while it was away, once each, in order.
import { test, describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { skipReason, startCluster, rest, postJson } from "./lib/cluster.js";
import { launch, clientPage, identAndJoin, waitForEvent } from "./lib/browser.js";

const skip = skipReason();
if (skip) {
  console.log(`# browser tests skipped: ${skip}`);
  // One visible skipped test, so the summary says the suite was skipped rather than empty.
  test("browser tests", { skip }, () => {});
}

describe("gateway restart", { skip: !!skip }, () => {
  let cluster, browser, page;

  before(async () => {
    cluster = await startCluster("reconnect");
    browser = await launch();
  });

  after(async () => {
    if (page?.consoleLines.length) console.log(`# page:\n# ${page.consoleLines.join("\n# ")}`);
    await browser?.close();
    await cluster?.stop();
  });

  it("after SIGKILL and a restart on the same port the page reconnects, re-joins, recovers what it missed and gets new events", async () => {
    page = await clientPage(browser, cluster.gatewayUrl);
    const erin = await postJson(`${cluster.gatewayUrl}/demo/token`, { user: "erin" });
    assert.equal(erin.status, 200, JSON.stringify(erin.body));
    const before = await identAndJoin(page, erin.body.token, ["news"]);
    assert.equal(before.transport, "websocket");

    const first = await rest(cluster, "/v1/notify/channel/news", { event: "NEWS", payload: "before" });
    await waitForEvent(page, first.body.id);
    await page.evaluate(() => {
      window.recoveries = [];
      window.h.on("recovered", (r) => window.recoveries.push(r));
    });

    await cluster.killGateway();
    await page.waitForFunction(() => window.h.state !== "connected", null, { timeout: 10000 });
    // Sent while the page has no connection: kept in history, replayed when it comes back.
    const missed = [];
    for (let n = 0; n < 5; n++) {
      const sent = await rest(cluster, "/v1/notify/channel/news", { event: "NEWS", payload: `missed-${n}` });
      assert.equal(sent.status, 202, JSON.stringify(sent.body));
      missed.push(sent.body.id);
    }
    const direct = await rest(cluster, "/v1/notify/user/erin", { event: "DM", payload: "missed-dm" });
    missed.push(direct.body.id);
    await cluster.startGatewayAgain();

    // No application code runs from here on: the client must ident and join by itself.
    await page.waitForFunction((old) => window.h.state === "connected" && window.h.conn && window.h.conn !== old,
      before.conn, { timeout: 45000 });
    const after = await rest(cluster, "/v1/notify/channel/news", { event: "NEWS", payload: "after" });
    assert.equal(after.status, 202, JSON.stringify(after.body));
    const got = await waitForEvent(page, after.body.id);
    assert.equal(got.payload, "after");
    const seen = await page.evaluate(() => window.events.map((e) => e.payload));
    assert.deepEqual(seen, ["before", "missed-dm", "missed-0", "missed-1", "missed-2", "missed-3", "missed-4", "after"]);
    assert.deepEqual(await page.evaluate(() => window.recoveries),
      [{ recovered: true, user: true, channels: { news: true } }]);
    assert.deepEqual(got.meta.via.channels, ["news"]);
    assert.equal(await page.evaluate(() => window.h.user), "erin");

    const states = await page.evaluate(() => window.states.map((s) => s.state));
    assert.deepEqual(states.slice(0, 2), ["connecting", "connected"]);
    assert.ok(states.includes("disconnected"), `states: ${states}`);
    assert.equal(states.at(-1), "connected");
  });
});
