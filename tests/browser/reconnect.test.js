// Browser test of recovery: the gateway is killed and restarted, and the page is back in its channel on its own.
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

  it("after SIGKILL and a restart on the same port the page reconnects, re-joins and gets new events", async () => {
    page = await clientPage(browser, cluster.gatewayUrl);
    const erin = await postJson(`${cluster.gatewayUrl}/demo/token`, { user: "erin" });
    assert.equal(erin.status, 200, JSON.stringify(erin.body));
    const before = await identAndJoin(page, erin.body.token, ["news"]);
    assert.equal(before.transport, "websocket");

    const first = await rest(cluster, "/v1/notify/channel/news", { event: "NEWS", payload: "before" });
    await waitForEvent(page, first.body.id);

    await cluster.killGateway();
    await page.waitForFunction(() => window.h.state !== "connected", null, { timeout: 10000 });
    await cluster.startGatewayAgain();

    // No application code runs from here on: the client must ident and join by itself.
    await page.waitForFunction((old) => window.h.state === "connected" && window.h.conn && window.h.conn !== old,
      before.conn, { timeout: 45000 });
    const after = await rest(cluster, "/v1/notify/channel/news", { event: "NEWS", payload: "after" });
    assert.equal(after.status, 202, JSON.stringify(after.body));
    const got = await waitForEvent(page, after.body.id);
    assert.equal(got.payload, "after");
    assert.deepEqual(got.meta.via.channels, ["news"]);
    assert.equal(await page.evaluate(() => window.h.user), "erin");

    const states = await page.evaluate(() => window.states.map((s) => s.state));
    assert.deepEqual(states.slice(0, 2), ["connecting", "connected"]);
    assert.ok(states.includes("disconnected"), `states: ${states}`);
    assert.equal(states.at(-1), "connected");
  });
});
