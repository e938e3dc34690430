// Herald demo app: pick a name, chat in channels, watch the live log; everything arrives through /herald.js.
import { Herald } from "/herald.js";

const $ = (id) => document.getElementById(id);
const NAME_RE = /^[A-Za-z0-9_.:@-]{1,64}$/;
const MAX_LOG_LINES = 500;
const STATE_LABELS = { connecting: "connecting", connected: "live", disconnected: "offline" };

let herald = null;
let me = null;
let token = null;
let current = "chat";
const channels = new Map(); // name -> {messages: [], unread: number}
const people = new Map(); // name -> time last heard from

// ---- small DOM helpers (textContent only: chat text is never parsed as HTML) ----

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

/** A stable color per name, so a person is recognisable at a glance. */
function hue(name) {
  let h = 0;
  for (const c of name) h = (h * 31 + c.codePointAt(0)) % 360;
  return h;
}

function avatar(name, extra = "") {
  const node = el("span", `avatar ${extra}`.trim(), name.slice(0, 1).toUpperCase());
  node.style.setProperty("--hue", hue(name));
  node.setAttribute("aria-hidden", "true");
  return node;
}

const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });

async function postJson(path, body) {
  const res = await fetch(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data?.error?.message ?? `${path} answered HTTP ${res.status}`);
  return data;
}

// ---- connection ----

/** Each (re)ident asks for a fresh token, so a reconnect never replays an expired one. */
async function freshToken() {
  const data = await postJson("/demo/token", { user: me });
  token = data.token;
  return { token };
}

async function signIn(name) {
  me = name;
  herald = new Herald(location.origin);
  window.herald = herald; // handy in the console, and for the browser tests
  herald.on("state", renderStatus);
  herald.on("error", (err) => logLine({ level: "warn", msg: `herald: ${err.code}: ${err.message}` }));
  herald.on("CHAT:MESSAGE", onChat);
  herald.on("LOG:LINE", (payload, meta) => logLine(payload, meta));
  herald.on("LIFECYCLE", lifecycleLine);
  herald.on("*", (payload, meta) => {
    // Events the page has no view for still show up, so a curl from the snippet is never lost.
    if (!["CHAT:MESSAGE", "LOG:LINE", "LIFECYCLE"].includes(meta.event)) logLine({ event: meta.event, payload }, meta);
  });
  renderStatus(herald.state);
  await herald.ident(freshToken);
  await Promise.all([joinChannel("chat"), herald.join("logs"), herald.join("lifecycle")]);
  people.set(me, Date.now());
  renderPeople();
  $("me-name").textContent = me;
  $("me-avatar").replaceWith(Object.assign(avatar(me, "small"), { id: "me-avatar" }));
  $("me").hidden = false;
  $("text").disabled = $("send").disabled = $("rpc-call").disabled = false;
  selectChannel("chat");
  $("text").focus();
}

function signOut() {
  herald?.close();
  herald = window.herald = null;
  me = token = null;
  channels.clear();
  people.clear();
  $("me").hidden = true;
  $("text").disabled = $("send").disabled = $("rpc-call").disabled = true;
  renderChannels();
  renderPeople();
  renderMessages();
  renderStatus("disconnected");
  $("login").hidden = false;
  $("name").focus();
}

async function joinChannel(name) {
  if (!channels.has(name)) channels.set(name, { messages: [], unread: 0 });
  renderChannels();
  try {
    await herald.join(name);
  } catch (err) {
    channels.delete(name);
    renderChannels();
    throw err;
  }
}

async function leaveChannel(name) {
  channels.delete(name);
  if (current === name) selectChannel("chat");
  renderChannels();
  await herald.leave(name).catch((err) => logLine({ level: "warn", msg: `leave ${name}: ${err.message}` }));
}

// ---- incoming events ----

function onChat(payload, meta) {
  const name = payload?.channel ?? meta.via.channels[0] ?? "chat";
  if (!channels.has(name)) channels.set(name, { messages: [], unread: 0 });
  const channel = channels.get(name);
  // A client's publish names its sender in `from` (Herald sets it); a backend's event in its payload.
  const message = { user: String(meta.from?.user ?? payload?.user ?? "?"), text: String(payload?.text ?? ""), at: payload?.at ?? Date.now(), via: meta.via };
  channel.messages.push(message);
  if (channel.messages.length > 500) channel.messages.shift();
  people.set(message.user, Date.now());
  renderPeople();
  if (name === current) appendMessage(message);
  else {
    channel.unread++;
    renderChannels();
  }
}

/** One lifecycle event: "online alice", "join alice #chat", "disconnect bob (closed by client)". */
function lifecycleLine(event) {
  const list = $("lifecycle");
  const parts = [event.type, event.user ?? event.gateway ?? "", event.channel ? `#${event.channel}` : "", event.reason ? `(${event.reason})` : ""];
  const row = el("li", "log-line lifecycle-line", parts.filter(Boolean).join(" "));
  row.dataset.type = event.type;
  list.prepend(row);
  while (list.children.length > 200) list.lastElementChild.remove();
}

function logLine(payload, meta) {
  const log = $("log");
  const row = el("li", "log-line");
  const now = Date.now();
  row.append(el("time", "log-time", clock(now)));
  let text;
  if (typeof payload?.line === "string") {
    text = payload.line; // a raw line from a tailed file
  } else if (payload && typeof payload === "object" && "msg" in payload) {
    const { msg, level, ...rest } = payload;
    if (level) row.append(el("span", `log-level level-${String(level).toLowerCase()}`, String(level)));
    text = Object.keys(rest).length ? `${msg} ${JSON.stringify(rest)}` : String(msg);
  } else {
    text = JSON.stringify(payload);
  }
  row.append(el("span", "log-text", text));
  if (meta?.event && meta.event !== "LOG:LINE") row.classList.add("log-event");
  log.append(row);
  while (log.children.length > MAX_LOG_LINES) log.firstElementChild.remove();
  if ($("follow").checked) log.scrollTop = log.scrollHeight;
}

// ---- rendering ----

function renderStatus(state) {
  const status = $("status");
  status.dataset.state = state;
  status.dataset.transport = herald?.transport ?? "";
  const transport = state === "connected" && herald?.transport ? ` · ${herald.transport}` : "";
  $("status-text").textContent = `${STATE_LABELS[state] ?? state}${transport}`;
  status.title = herald?.conn ? `connection ${herald.conn}` : "";
}

function renderChannels() {
  const list = $("channels");
  list.replaceChildren();
  for (const [name, channel] of channels) {
    const item = el("li", name === current ? "channel active" : "channel");
    const open = el("button", "channel-name", `# ${name}`);
    open.type = "button";
    open.addEventListener("click", () => selectChannel(name));
    item.append(open);
    if (channel.unread) item.append(el("span", "badge", String(channel.unread)));
    if (name !== "chat") {
      const leave = el("button", "channel-leave", "×");
      leave.type = "button";
      leave.title = `Leave ${name}`;
      leave.addEventListener("click", () => leaveChannel(name));
      item.append(leave);
    }
    list.append(item);
  }
}

function renderPeople() {
  const list = $("people");
  list.replaceChildren();
  const sorted = [...people].sort((a, b) => b[1] - a[1]);
  for (const [name] of sorted) {
    const item = el("li", "person");
    item.append(avatar(name, "small"), el("span", "", name));
    if (name === me) item.append(el("span", "muted", "(you)"));
    list.append(item);
  }
}

function messageNode(m) {
  const item = el("li", m.user === me ? "message mine" : "message");
  item.append(avatar(m.user));
  const body = el("div", "message-body");
  const head = el("div", "message-head");
  head.append(el("span", "message-user", m.user), el("time", "message-time", clock(m.at)));
  const via = el("span", "via");
  for (const c of m.via.channels) via.append(el("span", "tag", `#${c}`));
  for (const u of m.via.users) via.append(el("span", "tag user", `@${u}`));
  if (via.childElementCount) head.append(el("span", "muted", "via"), via);
  body.append(head, el("div", "message-text", m.text));
  item.append(body);
  return item;
}

function appendMessage(m) {
  const list = $("messages");
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  list.append(messageNode(m));
  $("empty").hidden = true;
  if (nearBottom || m.user === me) list.scrollTop = list.scrollHeight;
}

function renderMessages() {
  const list = $("messages");
  const channel = channels.get(current);
  list.replaceChildren(...(channel?.messages ?? []).map(messageNode));
  $("empty").hidden = list.childElementCount > 0;
  list.scrollTop = list.scrollHeight;
}

function selectChannel(name) {
  current = name;
  const channel = channels.get(name);
  if (channel) channel.unread = 0;
  $("channel-title").textContent = `# ${name}`;
  $("text").placeholder = `Message #${name}`;
  $("channel-info").textContent = name === "chat" ? "everyone starts here" : "";
  renderChannels();
  renderMessages();
  renderCurl();
}

function renderCurl() {
  const channel = current;
  // Short lines, so the snippet fits the panel without scrolling sideways.
  $("curl").textContent = [
    `HERALD=${location.origin}`,
    `curl $HERALD/v1/notify \\`,
    `  -H "Authorization: Bearer $HERALD_API_KEY" \\`,
    `  -H "Content-Type: application/json" \\`,
    `  -d '{"event": "CHAT:MESSAGE",`,
    `       "targets": {"channels": ["${channel}"]},`,
    `       "payload": {"user": "backend",`,
    `         "channel": "${channel}", "text": "Hi!"}}'`,
    ``,
    `# a line for the live log`,
    `curl $HERALD/v1/notify/channel/logs \\`,
    `  -H "Authorization: Bearer $HERALD_API_KEY" \\`,
    `  -H "Content-Type: application/json" \\`,
    `  -d '{"event": "LOG:LINE",`,
    `       "payload": {"line": "deploy done"}}'`,
  ].join("\n");
}

// ---- user input ----

$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const name = $("name").value.trim();
  $("login-error").textContent = "";
  if (!NAME_RE.test(name)) {
    $("login-error").textContent = "Use letters, digits and _ - . : @ only.";
    return;
  }
  $("enter").disabled = true;
  try {
    localStorage.setItem("herald-demo-name", name);
    $("login").hidden = true;
    await signIn(name);
  } catch (err) {
    signOut();
    $("login-error").textContent = `Could not sign in: ${err.message}`;
  } finally {
    $("enter").disabled = false;
  }
});

$("composer").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = $("text");
  const text = input.value.trim();
  if (!text || !token) return;
  $("send").disabled = true;
  try {
    // Client publish: the other members get it through Herald; this page shows its own copy once a
    // dispatcher accepted it (the sender is not sent its own event back).
    const channel = current;
    const payload = { channel, text, at: Date.now() };
    const { event_id } = await herald.publish(channel, "CHAT:MESSAGE", payload);
    onChat(payload, { id: event_id, event: "CHAT:MESSAGE", via: { users: [], channels: [channel] }, from: { user: me } });
    input.value = "";
  } catch (err) {
    logLine({ level: "error", msg: `send failed: ${err.message}` });
  } finally {
    $("send").disabled = false;
    input.focus();
  }
});

$("rpc-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const method = $("rpc-method").value.trim();
  const text = $("rpc-data").value.trim();
  const out = $("rpc-result");
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text; // not JSON: send it as a string
    }
  }
  out.dataset.outcome = "";
  out.textContent = `calling ${method}…`;
  try {
    const result = await herald.rpc(method, data, { timeoutMs: 10000 });
    out.dataset.outcome = "result";
    out.textContent = `→ ${JSON.stringify(result)}`;
  } catch (err) {
    out.dataset.outcome = "error";
    out.textContent = `✗ ${err.code}: ${err.message}`;
  }
});

$("add-channel").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = $("new-channel");
  const name = input.value.trim().replace(/^#/, "");
  if (!NAME_RE.test(name) || !herald) return;
  input.value = "";
  try {
    await joinChannel(name);
    selectChannel(name);
  } catch (err) {
    logLine({ level: "error", msg: `join ${name}: ${err.message}` });
  }
});

$("sign-out").addEventListener("click", () => {
  localStorage.removeItem("herald-demo-name");
  signOut();
});

$("clear-log").addEventListener("click", () => $("log").replaceChildren());

$("copy-curl").addEventListener("click", async () => {
  const button = $("copy-curl");
  try {
    await navigator.clipboard.writeText($("curl").textContent);
    button.textContent = "copied";
  } catch {
    // Clipboard access needs a secure context: select the text so Ctrl+C does it.
    getSelection().selectAllChildren($("curl"));
    button.textContent = "press Ctrl+C";
  }
  setTimeout(() => { button.textContent = "copy"; }, 1500);
});

$("name").value = localStorage.getItem("herald-demo-name") ?? "";
renderStatus("disconnected");
renderCurl();
