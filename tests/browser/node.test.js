// The browser client used from a Node script (no browser): it connects, idents, joins and gets
// the events posted through the REST API, then exits once closed.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { skipReason, startCluster, rest, HERE, Proc } from "./lib/cluster.js";

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
    const script = new Proc("node-subscriber", process.execPath, [...flags, join(HERE, "lib", "node-subscriber.mjs"),
      cluster.gatewayUrl, minted.body.token, "scripts", "2"]);
    await script.waitFor(/^READY$/m);
    const posted = [
      await rest(cluster, "/v1/notify/channel/scripts", { event: "NODE:CHANNEL", payload: { n: 1 } }),
      await rest(cluster, "/v1/notify/user/scripter", { event: "NODE:USER", payload: { n: 2 } }),
    ];
    for (const p of posted) assert.equal(p.status, 202, JSON.stringify(p.body));

    const { code } = await script.exited;
    assert.equal(code, 0, `script failed:\n${script.output}`);
    const events = script.output.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    assert.deepEqual(events, [
      { event: "NODE:CHANNEL", payload: { n: 1 }, via: { users: [], channels: ["scripts"] } },
      { event: "NODE:USER", payload: { n: 2 }, via: { users: ["scripter"], channels: [] } },
    ]);
  });
});
