// Starts and stops real processes for the browser tests: nats-server, a dispatcher, a REST adapter and a gateway.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";

export const HERE = dirname(dirname(fileURLToPath(import.meta.url)));
export const OUTPUT = join(HERE, "output");
export const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
const HERALD_BIN = process.env.HERALD_BIN;

/**
 * Why these tests cannot run here, or null when everything they need is present (Chromium only
 * when `browser` is true). With HERALD_REQUIRE_E2E=1 (the project's test command sets it) a
 * missing part is an error instead of a skip, so a run that tested nothing cannot look green.
 */
export function skipReason({ browser = true } = {}) {
  const reason = missingPart(browser);
  if (reason && process.env.HERALD_REQUIRE_E2E === "1") throw new Error(`cannot run: ${reason}`);
  return reason;
}

function missingPart(browser) {
  if (!HERALD_BIN) return "HERALD_BIN is not set: point it at a built herald binary (e.g. target/release/herald)";
  if (!existsSync(HERALD_BIN)) return `HERALD_BIN=${HERALD_BIN} does not exist: build herald first`;
  if (!natsBin()) return "NATS_SERVER_BIN is not set and no nats-server is on PATH (need nats-server >= 2.10)";
  if (browser && !existsSync(CHROMIUM)) return `${CHROMIUM} is missing: apt-get install -y chromium`;
  return null;
}

function natsBin() {
  if (process.env.NATS_SERVER_BIN) return existsSync(process.env.NATS_SERVER_BIN) ? process.env.NATS_SERVER_BIN : null;
  const found = spawnSync("sh", ["-c", "command -v nats-server"], { encoding: "utf8" });
  return found.status === 0 ? found.stdout.trim() : null;
}

/** A port nobody listens on right now (the OS picks it; we release it at once). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const running = new Set();
// Whatever happens to the test process, leave no server behind.
process.on("exit", () => { for (const p of running) p.child.kill("SIGKILL"); });

/** A child process whose output is kept, so tests can wait for a line and failures can show the log. */
export class Proc {
  constructor(name, cmd, args) {
    this.name = name;
    this.output = "";
    this.child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: { HERALD_LOG: "info", ...process.env } });
    running.add(this);
    const collect = (chunk) => {
      this.output += chunk.toString();
      for (const waiter of [...this.waiters]) waiter();
    };
    this.waiters = new Set();
    this.child.stdout.on("data", collect);
    this.child.stderr.on("data", collect);
    this.exited = new Promise((resolve) => this.child.on("exit", (code, signal) => {
      running.delete(this);
      this.exit = { code, signal };
      for (const waiter of [...this.waiters]) waiter();
      resolve(this.exit);
    }));
    this.child.on("error", (err) => { this.output += `\nspawn error: ${err.message}\n`; });
  }

  /** Resolve with the first match of `pattern` in the output; fail if the process exits first or `ms` pass. */
  waitFor(pattern, ms = 15000) {
    return new Promise((resolve, reject) => {
      const done = (fn, value) => { clearTimeout(timer); this.waiters.delete(check); fn(value); };
      const check = () => {
        const match = this.output.match(pattern);
        if (match) done(resolve, match);
        else if (this.exit) done(reject, new Error(`${this.name} exited (${JSON.stringify(this.exit)}) before printing ${pattern}:\n${this.tail()}`));
      };
      const timer = setTimeout(() => done(reject, new Error(`${this.name} did not print ${pattern} within ${ms} ms:\n${this.tail()}`)), ms);
      this.waiters.add(check);
      check();
    });
  }

  tail(lines = 40) {
    return this.output.split("\n").slice(-lines).join("\n");
  }

  async kill(signal = "SIGTERM") {
    if (this.exit) return this.exit;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 5000);
    await this.exited;
    clearTimeout(timer);
    return this.exit;
  }
}

/** `herald passwd`: the argon2id hash of `secret`, given on stdin. */
function passwd(secret) {
  const result = spawnSync(HERALD_BIN, ["passwd"], { input: `${secret}\n`, encoding: "utf8", timeout: 30000 });
  const hash = result.stdout.trim().split("\n").pop();
  if (result.status !== 0 || !hash?.startsWith("$argon2")) {
    throw new Error(`herald passwd failed (${result.status}): ${result.stderr}${result.stdout}`);
  }
  return hash;
}

/** The URL an HTTP role prints: `herald <role> listening on http://127.0.0.1:PORT`. */
async function listening(proc, role) {
  const match = await proc.waitFor(new RegExp(`herald ${role} listening on (http://\\S+)`));
  return match[1];
}

/**
 * A whole Herald installation on loopback. `name` labels the logs written to output/logs/;
 * `gatewayArgs` are added to every gateway's command line, `restArgs` to the REST adapter's,
 * `dispatcherArgs` to the dispatcher's;
 * `gateways` gateways run (their URLs in `gatewayUrls`, the first also in `gatewayUrl`).
 * Returns URLs, credentials, `restartGateway()` and `stop()`.
 */
export async function startCluster(name, { gatewayArgs = [], restArgs = [], dispatcherArgs = [], gateways = 1 } = {}) {
  const dir = await mkdtemp(join(tmpdir(), "herald-browser-"));
  const procs = [];
  const cluster = {
    apiKey: randomBytes(18).toString("hex"),
    jwtSecret: randomBytes(24).toString("hex"),
    procs,
  };
  const start = (label, cmd, args) => {
    const proc = new Proc(label, cmd, args);
    procs.push(proc);
    return proc;
  };
  try {
    const natsPort = await freePort();
    const nats = start("nats-server", natsBin(), ["-js", "-a", "127.0.0.1", "-p", String(natsPort), "-sd", join(dir, "jetstream")]);
    await nats.waitFor(/Server is ready/);
    cluster.natsUrl = `nats://127.0.0.1:${natsPort}`;

    const secret = ["--jwt-secret", cluster.jwtSecret];
    const dispatcher = start("dispatcher", HERALD_BIN, ["dispatcher", "--nats", cluster.natsUrl, ...secret, ...dispatcherArgs]);
    // Requests are answered only once it says it is running.
    await dispatcher.waitFor(/herald dispatcher running/);
    const rest = start("rest", HERALD_BIN, ["adapter", "rest", "--nats", cluster.natsUrl, "--listen", "127.0.0.1:0",
      "--api-key-hash", passwd(cluster.apiKey), ...secret, ...restArgs]);
    cluster.restUrl = await listening(rest, "rest");

    // A port chosen here, so each gateway can say its public URL (the cluster view lists it).
    const startGateway = async (listen) => {
      const address = listen ?? `127.0.0.1:${await freePort()}`;
      const gateway = start("gateway", HERALD_BIN, ["gateway", "--nats", cluster.natsUrl, "--listen", address,
        "--public-url", `http://${address}`, "--demo", ...secret, ...gatewayArgs]);
      return { gateway, url: await listening(gateway, "gateway") };
    };
    cluster.gatewayUrls = [];
    for (let i = 0; i < gateways; i++) {
      const { gateway, url } = await startGateway();
      if (i === 0) cluster.gateway = gateway;
      cluster.gatewayUrls.push(url);
    }
    cluster.gatewayUrl = cluster.gatewayUrls[0];

    /** SIGKILL the gateway (no goodbye to anyone), then start a new one on the same port. */
    cluster.killGateway = () => cluster.gateway.kill("SIGKILL");
    cluster.startGatewayAgain = async () => {
      const address = new URL(cluster.gatewayUrl).host;
      // The port was just freed; retry briefly in case the kernel still holds it.
      const deadline = Date.now() + 10000;
      for (;;) {
        try {
          const { gateway, url } = await startGateway(address);
          cluster.gateway = gateway;
          return url;
        } catch (err) {
          if (Date.now() > deadline) throw err;
        }
      }
    };
  } catch (err) {
    await stop();
    throw err;
  }

  async function stop() {
    await Promise.all(procs.map((p) => p.kill("SIGTERM")));
    mkdirSync(join(OUTPUT, "logs"), { recursive: true });
    const counts = {};
    for (const p of procs) {
      counts[p.name] = (counts[p.name] ?? 0) + 1;
      const file = `${name}-${p.name}${counts[p.name] > 1 ? `-${counts[p.name]}` : ""}.log`;
      writeFileSync(join(OUTPUT, "logs", file), p.output);
    }
    await rm(dir, { recursive: true, force: true });
  }
  cluster.stop = stop;
  return cluster;
}

/** POST JSON to the REST adapter with the API key; returns {status, body}. */
export async function rest(cluster, path, body) {
  const res = await fetch(`${cluster.restUrl}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${cluster.apiKey}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let parsed = null;
  try { parsed = JSON.parse(text); } catch { parsed = text; }
  return { status: res.status, body: parsed };
}

/** POST JSON to a URL without credentials (the demo endpoints). */
export async function postJson(url, body) {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json().catch(() => null) };
}
