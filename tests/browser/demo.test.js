// Browser test of the demo page: sign in, chat between two tabs, add a channel, watch the live log, save a screenshot.
import { test, describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { skipReason, startCluster, rest, OUTPUT } from "./lib/cluster.js";
import { launch, watch } from "./lib/browser.js";

const skip = skipReason();
if (skip) {
  console.log(`# browser tests skipped: ${skip}`);
  // One visible skipped test, so the summary says the suite was skipped rather than empty.
  test("browser tests", { skip }, () => {});
}

describe("demo page", { skip: !!skip }, () => {
  let cluster, browser;
  const pages = [];

  before(async () => {
    cluster = await startCluster("demo");
    browser = await launch();
  });

  after(async () => {
    for (const page of pages) if (page.consoleLines.length) console.log(`# demo page:\n# ${page.consoleLines.join("\n# ")}`);
    await browser?.close();
    await cluster?.stop();
  });

  /** Open the demo in its own browser context (its own storage) and sign in as `name`. */
  async function signIn(name) {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const page = watch(await context.newPage());
    pages.push(page);
    await page.goto(`${cluster.gatewayUrl}/`);
    await page.fill("#name", name);
    await page.click("#enter");
    await page.waitForSelector('#status[data-state="connected"]', { timeout: 15000 });
    await page.waitForSelector("#text:not([disabled])");
    return page;
  }

  const messageFrom = (user, text) => `.message:has(.message-user:text-is("${user}")):has(.message-text:text-is("${text}"))`;

  it("signs in, chats between two tabs, joins a channel and shows the live log", async () => {
    const dora = await signIn("dora");
    const eve = await signIn("eve");
    assert.match(await dora.textContent("#status-text"), /live · (websocket|sse)/);

    await dora.fill("#text", "Hello from the browser test");
    await dora.press("#text", "Enter");
    for (const page of [dora, eve]) {
      const message = await page.waitForSelector(messageFrom("dora", "Hello from the browser test"), { timeout: 10000 });
      assert.match(await message.textContent(), /#chat/, "the message shows the channel it came through");
    }
    await eve.fill("#text", "Hi dora, eve here");
    await eve.press("#text", "Enter");
    await dora.waitForSelector(messageFrom("eve", "Hi dora, eve here"), { timeout: 10000 });
    await dora.waitForSelector('.person:has-text("eve")');

    // A channel added in the page is joined through herald.js and receives messages.
    await eve.fill("#new-channel", "random");
    await eve.press("#new-channel", "Enter");
    await eve.waitForSelector('.channel.active:has-text("random")');
    const fromBackend = await rest(cluster, "/v1/notify/channel/random", {
      event: "CHAT:MESSAGE", payload: { user: "backend", channel: "random", text: "posted with curl", at: Date.now() },
    });
    assert.equal(fromBackend.status, 202, JSON.stringify(fromBackend.body));
    await eve.waitForSelector(messageFrom("backend", "posted with curl"), { timeout: 10000 });

    // The live log takes raw lines and JSON payloads from channel `logs`.
    const line = await rest(cluster, "/v1/notify/channel/logs", { event: "LOG:LINE", payload: { line: "deploy finished in 42s" } });
    assert.equal(line.status, 202, JSON.stringify(line.body));
    const json = await rest(cluster, "/v1/notify/channel/logs", { event: "LOG:LINE", payload: { level: "warn", msg: "disk 91% full", host: "db-1" } });
    assert.equal(json.status, 202, JSON.stringify(json.body));
    await dora.waitForSelector('.log-line:has-text("deploy finished in 42s")', { timeout: 10000 });
    await dora.waitForSelector('.log-line:has(.level-warn):has-text("disk 91% full")', { timeout: 10000 });

    assert.match(await dora.textContent("#curl"), /HERALD=http:\/\/127\.0\.0\.1:\d+\ncurl \$HERALD\/v1\/notify /);

    // The RPC panel calls through herald.js; with no backend configured, Herald says not_found.
    await dora.fill("#rpc-method", "calc.double");
    await dora.fill("#rpc-data", "21");
    await dora.click("#rpc-call");
    await dora.waitForSelector('#rpc-result[data-outcome="error"]:has-text("not_found")', { timeout: 10000 });

    mkdirSync(OUTPUT, { recursive: true });
    await dora.screenshot({ path: join(OUTPUT, "demo.png") });
    await eve.screenshot({ path: join(OUTPUT, "demo-eve.png") });
  });
});
