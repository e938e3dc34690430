// The browser client used from a Node script (no browser): it connects, idents, joins and gets
// the events posted through the REST API, then exits once closed.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { skipReason, startCluster, rest, HERE } from "./lib/cluster.js";

const skip = skipReason({ browser: false });

describe("herald.js in Node", { skip: skip ?? false }, () => {
  let cluster;
  before(async () => { cluster = await startCluster("node"); });
  after(async () => { await cluster?.stop(); });

  it("a Node script receives channel and user events and exits after close()", async () => {
    const minted = await rest(cluster, "/v1/tokens", { user: "scripter" });
    assert.equal(minted.status, 200, JSON.stringify(minted.body));
    // Node 22 has a global WebSocket; Node 20 keeps it behind a flag.
    const flags = typeof WebSocket === "undefined" ? ["--experimental-websocket"] : [];
    const child = spawn(process.execPath, [...flags, join(HERE, "lib", "node-subscriber.mjs"),
      cluster.gatewayUrl, minted.body.token, "scripts", "2"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    child.stdout.on("data", (c) => { out += c; });
    child.stderr.on("data", (c) => { err += c; });
    const exited = new Promise((resolve) => child.on("exit", resolve));

    const deadline = Date.now() + 15000;
    while (!out.includes("READY\n")) {
      assert.ok(Date.now() < deadline && child.exitCode === null, `no READY from the script:\n${out}\n${err}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const posted = [
      await rest(cluster, "/v1/notify/channel/scripts", { event: "NODE:CHANNEL", payload: { n: 1 } }),
      await rest(cluster, "/v1/notify/user/scripter", { event: "NODE:USER", payload: { n: 2 } }),
    ];
    for (const p of posted) assert.equal(p.status, 202, JSON.stringify(p.body));

    assert.equal(await exited, 0, `script failed:\n${out}\n${err}`);
    const events = out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    assert.deepEqual(events, [
      { event: "NODE:CHANNEL", payload: { n: 1 }, via: { users: [], channels: ["scripts"] } },
      { event: "NODE:USER", payload: { n: 2 }, via: { users: ["scripter"], channels: [] } },
    ]);
  });
});
