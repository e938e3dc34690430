// Launches Debian's headless chromium through playwright-core and opens pages that run the Herald client.
import { chromium } from "playwright-core";
import { CHROMIUM } from "./cluster.js";

/** The system chromium; playwright never downloads a browser of its own here. */
export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** Collect a page's console and errors, so a failing test can say what the page saw. */
export function watch(page) {
  const lines = [];
  page.on("console", (m) => lines.push(`console.${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => lines.push(`pageerror: ${e.message}`));
  page.on("requestfailed", (r) => lines.push(`requestfailed: ${r.url()} ${r.failure()?.errorText}`));
  page.consoleLines = lines;
  return page;
}

/**
 * A page on the gateway's origin with a Herald client in `window.h`, its events in
 * `window.events` and its state changes in `window.states`.
 * The page is the gateway's own `/herald.js` (any document of that origin would do): the client
 * then talks to its own origin, as a real page served next to the gateway does, without
 * depending on the demo page.
 */
export async function clientPage(browser, gatewayUrl, options = {}) {
  const context = await browser.newContext();
  // A bare script document makes chromium ask for /favicon.ico; its 404 would only be noise in the logs.
  await context.route("**/favicon.ico", (route) => route.fulfill({ status: 204 }));
  const page = watch(await context.newPage());
  await page.goto(`${gatewayUrl}/herald.js`);
  await page.evaluate(async (opts) => {
    const { Herald } = await import("/herald.js");
    window.events = [];
    window.states = [];
    const h = new Herald(location.origin, opts);
    h.on("*", (payload, meta) => window.events.push({ payload, meta }));
    h.on("state", (s) => window.states.push({ state: s, transport: h.transport, conn: h.conn }));
    window.h = h;
  }, options);
  return page;
}

/** Ident with a token and join channels, as application code would. */
export function identAndJoin(page, token, channels) {
  return page.evaluate(async ({ token, channels }) => {
    const ok = await window.h.ident({ token });
    for (const c of channels) await window.h.join(c);
    return { user: ok.user, conn: window.h.conn, transport: window.h.transport };
  }, { token, channels });
}

/** Wait until the page has received the event with this id; returns {payload, meta}. */
export async function waitForEvent(page, id, timeout = 10000) {
  await page.waitForFunction((id) => window.events.some((e) => e.meta.id === id), id, { timeout });
  return page.evaluate((id) => window.events.find((e) => e.meta.id === id), id);
}

/** Every event with this id the page received (to check an event came exactly once, or not at all). */
export function eventsWithId(page, id) {
  return page.evaluate((id) => window.events.filter((e) => e.meta.id === id), id);
}
