// Unit tests of the pure parts: the reconnection schedule and the transport fallback decision.
import { test } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay, chooseTransport } from "../herald.js";

test("backoff: full jitter under a ceiling of 500 ms doubling up to 30 s", () => {
  const top = () => 0.999999;
  const ceilings = [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000];
  ceilings.forEach((ceiling, attempt) => {
    const d = backoffDelay(attempt, { random: top });
    assert.ok(d < ceiling && d >= ceiling - 1, `attempt ${attempt}: ${d} vs ${ceiling}`);
    assert.equal(backoffDelay(attempt, { random: () => 0 }), 0);
    assert.equal(backoffDelay(attempt, { random: () => 0.5 }), Math.floor(ceiling / 2));
  });
});

test("backoff: huge attempt counts stay at the cap, parameters are honoured", () => {
  assert.equal(backoffDelay(5000, { random: () => 0.5 }), 15000);
  assert.equal(backoffDelay(3, { base: 100, factor: 3, cap: 1e9, random: () => 0.5 }), 1350);
  assert.equal(backoffDelay(-1, { random: () => 0.5 }), 250);
});

test("backoff: random delays stay inside [0, ceiling)", () => {
  for (let attempt = 0; attempt < 12; attempt++) {
    for (let i = 0; i < 50; i++) {
      const d = backoffDelay(attempt);
      assert.ok(Number.isInteger(d) && d >= 0 && d < Math.min(30000, 500 * 2 ** attempt));
    }
  }
});

const both = ["websocket", "sse"];

test("fallback: WebSocket until two attempts failed, then SSE", () => {
  assert.equal(chooseTransport({ transports: both, wsFailures: 0, fallbackAttempts: 0 }), "websocket");
  assert.equal(chooseTransport({ transports: both, wsFailures: 1, fallbackAttempts: 0 }), "websocket");
  assert.equal(chooseTransport({ transports: both, wsFailures: 2, fallbackAttempts: 0 }), "sse");
  assert.equal(chooseTransport({ transports: both, wsFailures: 3, fallbackAttempts: 0 }, { fallbackAfter: 4 }), "websocket");
});

test("fallback: every fifth attempt in fallback tries the WebSocket again", () => {
  const picks = Array.from({ length: 10 }, (_, n) => chooseTransport({ transports: both, wsFailures: 2 + n, fallbackAttempts: n }));
  assert.deepEqual(picks, ["sse", "sse", "sse", "sse", "websocket", "sse", "sse", "sse", "sse", "websocket"]);
  const never = Array.from({ length: 10 }, (_, n) => chooseTransport({ transports: both, wsFailures: 9, fallbackAttempts: n }, { wsRetryEvery: 0 }));
  assert.ok(never.every((t) => t === "sse"));
});

test("fallback: a single configured transport is always used", () => {
  assert.equal(chooseTransport({ transports: ["websocket"], wsFailures: 99, fallbackAttempts: 0 }), "websocket");
  assert.equal(chooseTransport({ transports: ["sse"], wsFailures: 0, fallbackAttempts: 0 }), "sse");
});
