// A Node script using clients/js as a scripting user would: ident, join, print what arrives.
// Usage: node [--experimental-websocket] node-subscriber.mjs GATEWAY_URL TOKEN CHANNEL COUNT
// Prints "READY" once joined, then one JSON line {event, payload, via} per event, and exits
// after COUNT events (status 2 if they do not come within 15 s).
import { Herald } from "../../../clients/js/herald.js";

const [url, token, channel, count] = process.argv.slice(2);
const giveUp = setTimeout(() => {
  console.error(`node subscriber: fewer than ${count} events within 15 s`);
  process.exit(2);
}, 15000);
giveUp.unref();

const h = new Herald(url, { transports: ["websocket"] });
let seen = 0;
h.on("*", (payload, meta) => {
  console.log(JSON.stringify({ event: meta.event, payload, via: meta.via }));
  if (++seen >= Number(count)) h.close();
});
await h.ident({ token });
await h.join(channel);
console.log("READY");
