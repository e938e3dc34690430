// What the Pusher tests share: apps in a config file, a tiny backend that authorizes channels with the
// `pusher` server SDK (the /broadcasting/auth flow Laravel Echo uses), pusher-js clients, and raw signed calls.
import { createServer } from "node:http";
import { createHash, createHmac } from "node:crypto";
import { writeFileSync, readFileSync, mkdtempSync } from "node:fs";
import { join, dirname } from "node:path";
import { tmpdir } from "node:os";
import { createRequire } from "node:module";
import Pusher from "pusher-js";
import PusherServer from "pusher";

export const APPS = [
  { id: "101", key: "key-one", secret: "secret-one-0123456789" },
  { id: "202", key: "key-two", secret: "secret-two-0123456789" },
];

/**
 * A herald config file declaring APPS (the first with `webhookUrl`, when given); pass it with `--config` to
 * gateways, the REST adapter and dispatchers.
 */
export function pusherConfig({ extra = "", webhookUrl } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "herald-pusher-"));
  const file = join(dir, "herald.toml");
  const tables = APPS.map((a, i) => `[[pusher_app]]\nid = "${a.id}"\nkey = "${a.key}"\nsecret = "${a.secret}"\n` +
    (i === 0 && webhookUrl ? `webhook_url = "${webhookUrl}"\n` : ""));
  writeFileSync(file, `${extra}\n${tables.join("\n")}`);
  return file;
}

/** The `pusher` server SDK for `app`, calling the REST adapter at `restUrl`. */
export function serverSdk(restUrl, app = APPS[0]) {
  const url = new URL(restUrl);
  return new PusherServer({ appId: app.id, key: app.key, secret: app.secret, host: url.hostname, port: url.port, useTLS: false });
}

/**
 * The backend pages authorize against: `POST /broadcasting/auth` signs private and presence channels for the
 * user named by the `x-user` header (presence `user_info` {name}); channels starting `private-admin-` are
 * refused with 403; `POST /pusher/user-auth` signs a sign-in. `GET /page` is a blank page of this origin
 * loading pusher-js and Laravel Echo, for the browser test.
 */
export async function startAuthBackend(app = APPS[0]) {
  // Signing is local: the SDK never calls this URL here.
  const sdk = serverSdk("http://127.0.0.1:1", app);
  const require = createRequire(import.meta.url);
  const pusherJs = readFileSync(join(dirname(require.resolve("pusher-js")), "../web/pusher.min.js"));
  const echoJs = readFileSync(join(dirname(require.resolve("laravel-echo")), "echo.iife.js"));
  const server = createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    const form = new URLSearchParams(body);
    const user = req.headers["x-user"];
    const send = (status, type, text) => {
      res.writeHead(status, { "content-type": type });
      res.end(text);
    };
    if (req.url === "/page") return send(200, "text/html", "<!doctype html><title>app</title>");
    if (req.url === "/pusher.js") return send(200, "text/javascript", pusherJs);
    if (req.url === "/echo.js") return send(200, "text/javascript", echoJs);
    if (req.url === "/broadcasting/auth") {
      const channel = form.get("channel_name");
      if (!user || channel.startsWith("private-admin-")) return send(403, "text/plain", "forbidden");
      const signed = channel.startsWith("presence-")
        ? sdk.authorizeChannel(form.get("socket_id"), channel, { user_id: user, user_info: { name: user.toUpperCase() } })
        : sdk.authorizeChannel(form.get("socket_id"), channel);
      return send(200, "application/json", JSON.stringify(signed));
    }
    if (req.url === "/pusher/user-auth") {
      if (!user) return send(403, "text/plain", "forbidden");
      return send(200, "application/json", JSON.stringify(sdk.authenticateUser(form.get("socket_id"), { id: user })));
    }
    send(404, "text/plain", "no such page");
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  return { url, close: () => new Promise((resolve) => server.close(resolve)) };
}

/**
 * A pusher-js client of `app` on the gateway at `gatewayUrl`, authorizing as `user` at `backend`, or with
 * `authorize({socketId, channelName})` when given (a client forging its own authorization).
 */
export function client(gatewayUrl, { app = APPS[0], user, backend, authorize } = {}) {
  const url = new URL(gatewayUrl);
  const headers = user ? { "x-user": user } : {};
  return new Pusher(app.key, {
    wsHost: url.hostname,
    wsPort: Number(url.port),
    forceTLS: false,
    enabledTransports: ["ws"],
    cluster: "local",
    channelAuthorization: authorize
      ? { customHandler: (params, callback) => callback(null, authorize(params)) }
      : { endpoint: `${backend?.url}/broadcasting/auth`, transport: "ajax", headers },
    userAuthentication: { endpoint: `${backend?.url}/pusher/user-auth`, transport: "ajax", headers },
  });
}

/** Resolves with the first `event` on `bindable` (a channel or the connection), or rejects after `ms`. */
export function next(bindable, event, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
    const handler = (data) => {
      clearTimeout(timer);
      bindable.unbind(event, handler);
      resolve(data);
    };
    bindable.bind(event, handler);
  });
}

/** Subscribes and waits for `pusher:subscription_succeeded`. */
export async function subscribed(pusher, name) {
  const channel = pusher.subscribe(name);
  if (!channel.subscribed) await next(channel, "pusher:subscription_succeeded");
  return channel;
}

/** Every `event` on `channel`, collected in order. */
export function collect(channel, event) {
  const seen = [];
  channel.bind(event, (data) => seen.push(data));
  return seen;
}

/** Waits until `check()` holds (polling), or throws after `ms` naming `what`. */
export async function until(what, check, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A raw HTTP API call signed like the SDKs sign, with parts to spoil: `timestamp`, `bodyMd5`, `secret`.
 * Returns {status, text}.
 */
export async function rawCall(restUrl, method, path, body, { app = APPS[0], timestamp, bodyMd5, secret } = {}) {
  const text = body === undefined ? "" : JSON.stringify(body);
  const params = {
    auth_key: app.key,
    auth_timestamp: String(timestamp ?? Math.floor(Date.now() / 1000)),
    auth_version: "1.0",
  };
  if (text) params.body_md5 = bodyMd5 ?? createHash("md5").update(text).digest("hex");
  const sorted = Object.keys(params).sort().map((k) => `${k}=${params[k]}`).join("&");
  const signature = createHmac("sha256", secret ?? app.secret).update(`${method}\n${path}\n${sorted}`).digest("hex");
  const query = new URLSearchParams({ ...params, auth_signature: signature });
  const res = await fetch(`${restUrl}${path}?${query}`, {
    method,
    headers: text ? { "content-type": "application/json" } : {},
    body: text || undefined,
  });
  return { status: res.status, text: await res.text() };
}

/** A webhook receiver: every POST's headers and raw body, in `received`. */
export async function startWebhookReceiver() {
  const received = [];
  const server = createServer(async (req, res) => {
    let rawBody = "";
    for await (const chunk of req) rawBody += chunk;
    received.push({ headers: req.headers, rawBody });
    res.writeHead(200);
    res.end();
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/pusher/webhook`,
    received,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
