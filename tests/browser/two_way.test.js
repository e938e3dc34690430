// Browser test of two-way traffic: two pages chat by client publish, and a page calls an RPC
// served by a small signed HTTP backend.
import { test, describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { createHmac, timingSafeEqual, randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { skipReason, startCluster, rest } from "./lib/cluster.js";
import { launch, clientPage, identAndJoin, waitForEvent, eventsWithId } from "./lib/browser.js";

const skip = skipReason();
if (skip) {
  console.log(`# browser tests skipped: ${skip}`);
  test("browser tests", { skip }, () => {});
}

/** An RPC backend on loopback: checks X-Herald-Signature, serves calc.double and calc.fail. */
function startBackend(secret) {
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const expected = Buffer.from(`sha256=${createHmac("sha256", secret).update(body).digest("hex")}`);
      const given = Buffer.from(String(req.headers["x-herald-signature"] ?? ""));
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        res.writeHead(401).end("bad signature");
        return;
      }
      const call = JSON.parse(body);
      const answer = call.method === "calc.double"
        ? { result: { doubled: call.data * 2, for: call.user } }
        : { error: { code: "app_1001", message: "always fails" } };
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

describe("two-way in chromium", { skip: !!skip }, () => {
  let cluster, browser, backend;
  const pages = [];

  before(async () => {
    const secret = randomBytes(24).toString("hex");
    backend = await startBackend(secret);
    const dir = mkdtempSync(join(tmpdir(), "herald-two-way-"));
    const config = join(dir, "herald.toml");
    writeFileSync(config, [
      "[[rpc]]", 'prefix = "calc."', `url = "http://127.0.0.1:${backend.address().port}/rpc"`, `secret = "${secret}"`, "",
    ].join("\n"));
    cluster = await startCluster("two-way", { gatewayArgs: ["--config", config] });
    browser = await launch();
  });

  after(async () => {
    for (const page of pages) if (page.consoleLines.length) console.log(`# ${page.url()}:\n# ${page.consoleLines.join("\n# ")}`);
    await browser?.close();
    await cluster?.stop();
    backend?.close();
  });

  const open = async () => {
    const page = await clientPage(browser, cluster.gatewayUrl);
    pages.push(page);
    return page;
  };
  const tokenFor = async (user) => {
    const minted = await rest(cluster, "/v1/tokens", { user, publish: ["room"], ttl_secs: 600 });
    assert.equal(minted.status, 200, JSON.stringify(minted.body));
    return minted.body.token;
  };

  it("two pages chat by client publish: the other page gets it with from, the sender does not", async () => {
    const alice = await open();
    const bob = await open();
    await identAndJoin(alice, await tokenFor("alice"), ["room"]);
    await identAndJoin(bob, await tokenFor("bob"), ["room"]);
    const sent = await alice.evaluate(() => window.h.publish("room", "CHAT:MESSAGE", { text: "hi bob" }));
    const got = await waitForEvent(bob, sent.event_id);
    assert.deepEqual(got.payload, { text: "hi bob" });
    assert.deepEqual(got.meta.from, { user: "alice" });
    assert.deepEqual(got.meta.via.channels, ["room"]);
    const reply = await bob.evaluate(() => window.h.publish("room", "CHAT:MESSAGE", { text: "hi alice" }));
    await waitForEvent(alice, reply.event_id);
    assert.deepEqual(await eventsWithId(alice, sent.event_id), [], "the sender does not get its own publish");
    const refused = await bob.evaluate(() => window.h.publish("elsewhere", "X", 1).catch((e) => e.code));
    assert.equal(refused, "forbidden");
  });

  it("a page calls an RPC and gets the backend's result, or its coded error", async () => {
    const page = await open();
    await identAndJoin(page, await tokenFor("carol"), []);
    const result = await page.evaluate(() => window.h.rpc("calc.double", 21));
    assert.deepEqual(result, { doubled: 42, for: "carol" });
    const failed = await page.evaluate(() => window.h.rpc("calc.fail", null).catch((e) => ({ code: e.code, message: e.message })));
    assert.deepEqual(failed, { code: "app_1001", message: "always fails" });
    const unknown = await page.evaluate(() => window.h.rpc("nobody.home").catch((e) => e.code));
    assert.equal(unknown, "not_found");
  });
});
