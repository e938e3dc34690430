// Herald admin console: the cluster, channels, users, a publish form and a live tail, built only
// on the REST API (every call carries the API key as a bearer header, never a cookie) and one
// WebSocket to a gateway for the tail.

const $ = (id) => document.getElementById(id);
const KEY_STORAGE = "herald-admin-key";
const REFRESH_MS = 2000;

let apiKey = sessionStorage.getItem(KEY_STORAGE);
let refreshTimer = null;
let cluster = null;
let tail = null; // {socket, channel}
let selectedUser = null;

// ---- REST ----

async function api(method, path, body) {
  const init = { method, headers: { authorization: `Bearer ${apiKey}` } };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const error = new Error(data?.error?.message ?? `${method} ${path}: HTTP ${res.status}`);
    error.status = res.status;
    throw error;
  }
  return data;
}

const enc = encodeURIComponent;

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text != null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function ago(ms) {
  return ms < 1000 ? `${ms} ms ago` : `${(ms / 1000).toFixed(1)} s ago`;
}

// ---- sign in / out ----

async function signIn(key) {
  apiKey = key;
  await api("GET", "/v1/cluster"); // proves the key
  sessionStorage.setItem(KEY_STORAGE, key);
  $("login").hidden = true;
  $("console").hidden = false;
  $("sign-out").hidden = false;
  $("status").textContent = "signed in";
  await refresh();
  refreshTimer = setInterval(refresh, REFRESH_MS);
  await searchChannels("");
}

function signOut() {
  sessionStorage.removeItem(KEY_STORAGE);
  apiKey = null;
  clearInterval(refreshTimer);
  stopTail();
  $("console").hidden = true;
  $("login").hidden = false;
  $("sign-out").hidden = true;
  $("status").textContent = "signed out";
}

// ---- cluster ----

async function refresh() {
  try {
    cluster = await api("GET", "/v1/cluster");
  } catch (err) {
    $("status").textContent = `cluster unavailable: ${err.message}`;
    if (err.status === 401) signOut();
    return;
  }
  $("status").textContent = `signed in · answered by dispatcher ${cluster.answered_by}`;
  const badges = $("cluster-status");
  badges.replaceChildren(
    badge(`NATS ${cluster.bus.connected ? "connected" : "disconnected"}`, cluster.bus.connected),
    badge(`presence store ${cluster.store.ready ? "ready" : "not ready"}`, cluster.store.ready),
    badge(`${cluster.gateways.length} gateways`, cluster.gateways.length > 0),
    badge(`${cluster.dispatchers.length} dispatchers`, cluster.dispatchers.length > 0),
    badge(`webhooks ${cluster.lifecycle.webhooks}`, true),
  );
  const gateways = $("gateways").tBodies[0];
  gateways.replaceChildren(...cluster.gateways.map((g) => {
    const row = el("tr");
    row.dataset.gateway = g.id;
    row.append(el("td", g.id), el("td", g.url ?? "—"), el("td", String(g.connections), "num connections"), el("td", ago(g.last_seen_ms)));
    return row;
  }));
  const dispatchers = $("dispatchers").tBodies[0];
  dispatchers.replaceChildren(...cluster.dispatchers.map((d) => {
    const row = el("tr");
    row.append(el("td", d.id), el("td", ago(d.last_seen_ms)));
    return row;
  }));
}

function badge(text, ok) {
  return el("span", text, `badge ${ok ? "ok" : "bad"}`);
}

// ---- channels ----

async function searchChannels(prefix) {
  const found = [];
  let cursor = null;
  // Pages of 500, at most 20 of them: enough to find a name; the console is not a report.
  for (let page = 0; page < 20; page++) {
    const data = await api("GET", `/v1/channels?limit=500${cursor ? `&cursor=${enc(cursor)}` : ""}`);
    for (const c of data.channels) if (c.channel.startsWith(prefix)) found.push(c);
    if (!data.next) break;
    cursor = data.next;
  }
  const list = $("channels");
  list.replaceChildren(...found.map((c) => {
    const item = el("li", `${c.channel} · ${c.connections} connections`);
    item.dataset.channel = c.channel;
    item.addEventListener("click", () => showChannel(c.channel));
    return item;
  }));
  if (!found.length) list.append(el("li", "no channel matches", "muted"));
}

async function showChannel(name) {
  const info = await api("GET", `/v1/channels/${enc(name)}`);
  $("channel-detail").hidden = false;
  $("channel-title").textContent = `# ${info.channel}`;
  $("channel-summary").textContent = `${info.connections} connections, ${info.users.length} users`;
  $("members").replaceChildren(...info.users.map((u) => {
    const item = el("li", u, "member");
    item.addEventListener("click", () => { $("user-name").value = u; showUser(u); });
    return item;
  }));
  $("tail-this").onclick = () => startTail(info.channel);
  $("publish-channel").value = info.channel;
}

// ---- users ----

async function showUser(name) {
  const info = await api("GET", `/v1/users/${enc(name)}`);
  selectedUser = info.user;
  $("user-detail").hidden = false;
  $("user-summary").textContent = info.connected
    ? `${info.user}: ${info.connections} connections, in ${info.channels.join(", ") || "no channel"}`
    : `${info.user}: not connected`;
  $("disconnect-result").textContent = "";
}

async function disconnectUser() {
  if (!selectedUser) return;
  const result = await api("POST", `/v1/users/${enc(selectedUser)}/disconnect`);
  $("disconnect-result").textContent = `closing ${result.connections} connections of ${result.user}`;
}

// ---- publish ----

async function publish() {
  const text = $("publish-payload").value.trim();
  let payload = null;
  if (text) {
    try {
      payload = JSON.parse(text);
    } catch (err) {
      $("publish-result").textContent = `payload is not JSON: ${err.message}`;
      return;
    }
  }
  const channel = $("publish-channel").value.trim();
  const result = await api("POST", "/v1/notify", { event: $("publish-event").value.trim(), targets: { channels: [channel] }, payload });
  $("publish-result").textContent = `accepted as ${result.id}`;
}

// ---- live tail ----

/** The WebSocket URL of a gateway: the first with a public URL, else this page's origin. */
function gatewayWsUrl() {
  const base = cluster?.gateways.find((g) => g.url)?.url ?? location.origin;
  return `${base.replace(/^http/, "ws").replace(/\/$/, "")}/ws`;
}

/** One event frame as a line of the tail (`earlier`: it came from the channel's history). */
function tailLine(frame, earlier) {
  const when = earlier ? "earlier" : new Date().toLocaleTimeString();
  const line = el("li", `${when} ${frame.event} ${JSON.stringify(frame.payload)}${frame.from ? ` from ${frame.from.user}` : ""}`);
  line.dataset.id = frame.id;
  if (earlier) line.classList.add("muted");
  $("tail").prepend(line);
  while ($("tail").children.length > 500) $("tail").lastElementChild.remove();
}

/**
 * Follows a channel: its last events from history first, then live ones. The join asks for
 * what came after the history read (`since`), so nothing falls between the two.
 */
async function startTail(channel) {
  stopTail();
  $("tail").replaceChildren();
  $("tail-channel").textContent = `# ${channel}`;
  $("tail-status").textContent = "connecting…";
  const history = await api("GET", `/v1/channels/${enc(channel)}/history?limit=20`);
  for (const frame of history.events) tailLine(frame, true);
  // A token of its own, granting exactly this channel (private ones included), for one hour.
  const user = `admin-tail-${Math.random().toString(36).slice(2, 10)}`;
  const { token } = await api("POST", "/v1/tokens", { user, channels: [channel], ttl_secs: 3600 });
  const socket = new WebSocket(gatewayWsUrl());
  tail = { socket, channel };
  socket.onmessage = (message) => {
    let frame;
    try { frame = JSON.parse(message.data); } catch { return; }
    if (frame.type === "welcome") {
      socket.send(JSON.stringify({ type: "ident", id: 1, auth: { token } }));
    } else if (frame.type === "ok" && frame.id === 1) {
      const join = { type: "join", id: 2, channel };
      if (history.pos) join.since = history.pos;
      socket.send(JSON.stringify(join));
    } else if (frame.type === "ok" && frame.id === 2) {
      const gap = frame.recovered === false ? " (some events between the history and now may be missing)" : "";
      $("tail-status").textContent = `following #${channel} (as ${user})${gap}`;
    } else if (frame.type === "error") {
      $("tail-status").textContent = `tail refused: ${frame.code}: ${frame.message}`;
    } else if (frame.type === "event") {
      tailLine(frame, false);
    }
  };
  socket.onclose = (event) => {
    if (tail?.socket === socket) $("tail-status").textContent = `tail closed (${event.code}${event.reason ? ` ${event.reason}` : ""})`;
  };
}

function stopTail() {
  if (tail) {
    const { socket } = tail;
    tail = null;
    socket.close();
  }
}

// ---- wiring ----

function reportingErrors(fn, target) {
  return async (event) => {
    event?.preventDefault?.();
    try {
      await fn();
    } catch (err) {
      $(target).textContent = err.message;
    }
  };
}

$("login-form").addEventListener("submit", reportingErrors(async () => {
  $("login-error").textContent = "";
  await signIn($("api-key").value.trim()).catch((err) => {
    apiKey = null;
    throw err.status === 401 ? new Error("this API key is not accepted") : err;
  });
}, "login-error"));
$("sign-out").addEventListener("click", signOut);
$("channel-search").addEventListener("submit", reportingErrors(() => searchChannels($("channel-prefix").value.trim()), "channel-summary"));
$("user-form").addEventListener("submit", reportingErrors(() => showUser($("user-name").value.trim()), "user-summary"));
$("disconnect").addEventListener("click", reportingErrors(disconnectUser, "disconnect-result"));
$("publish-form").addEventListener("submit", reportingErrors(publish, "publish-result"));

if (apiKey) signIn(apiKey).catch(() => signOut());
