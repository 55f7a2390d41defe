// static/realtime/backoff.js: the one helper behind every retry of the browser code.
import { test } from "node:test";
import assert from "node:assert/strict";

import { Retry, backoff, fullJitterBackoff } from "../../static/realtime/backoff.js";

const fixed = (value) => () => value;
const almostOne = 1 - 1e-9;

test("doubling from base, up to the cap", () => {
  const wait = backoff({ base: 2000, cap: 30000 });
  assert.deepEqual([1, 2, 3, 4, 5, 6, 9].map(wait), [2000, 4000, 8000, 16000, 30000, 30000, 30000]);
});

test("steps in order, the last one repeating", () => {
  const wait = backoff({ steps: [1000, 2000, 5000, 10000, 30000] });
  assert.deepEqual([1, 2, 3, 4, 5, 6, 50].map(wait), [1000, 2000, 5000, 10000, 30000, 30000, 30000]);
});

test("an attempt below 1 counts as the first", () => {
  const wait = backoff({ steps: [7, 8] });
  assert.equal(wait(0), 7);
  assert.equal(wait(-3), 7);
});

test("jitter scales the wait by a factor in [lo, hi)", () => {
  const low = backoff({ base: 1000, jitter: [0.5, 1], random: fixed(0) });
  const high = backoff({ base: 1000, jitter: [0.5, 1], random: fixed(almostOne) });
  assert.deepEqual([1, 2].map(low), [500, 1000]);
  assert.deepEqual([1, 2].map(high), [999, 1999]);
  const room = backoff({ base: 2000, cap: 30000, jitter: [0.75, 1.25], random: fixed(0.5) });
  assert.equal(room(1), 2000);
  assert.equal(backoff({ base: 2000, cap: 30000, jitter: [0.75, 1.25], random: fixed(0) })(8), 22500);
});

test("waits stay within their bounds with the real Math.random", () => {
  const wait = backoff({ steps: [1000, 2000, 5000], jitter: [0.5, 1] });
  for (let i = 0; i < 200; i += 1) {
    const attempt = 1 + (i % 4);
    const step = [1000, 2000, 5000, 5000][attempt - 1];
    const got = wait(attempt);
    assert.ok(got >= step / 2 && got < step, `${got} for attempt ${attempt}`);
    assert.ok(Number.isInteger(got));
  }
});

test("full jitter: [0, min(cap, base * 2^(n-1))), with the client's defaults", () => {
  const top = fullJitterBackoff({ random: fixed(almostOne) });
  assert.deepEqual([1, 2, 3, 4, 5, 6, 20].map(top), [499, 999, 1999, 3999, 7999, 9999, 9999]);
  assert.equal(fullJitterBackoff({ random: fixed(0) })(5), 0);
  assert.equal(fullJitterBackoff({ base: 100, cap: 250, random: fixed(0.5) })(3), 125);
});

test("backoff needs steps or a base", () => {
  assert.throws(() => backoff({}), /steps or a base/);
});

test("Retry: growing waits, a limit of tries, a new key starts over", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const retry = new Retry(backoff({ base: 100 }), { tries: 3 });
  const calls = [];
  assert.equal(retry.waiting, false);
  assert.equal(retry.later(() => calls.push("a1"), "a"), true);
  assert.equal(retry.waiting, true);
  t.mock.timers.tick(99);
  assert.deepEqual(calls, []);
  t.mock.timers.tick(1);
  assert.deepEqual(calls, ["a1"]);
  assert.equal(retry.waiting, false);
  assert.equal(retry.later(() => calls.push("a2"), "a"), true);
  t.mock.timers.tick(200);
  assert.equal(retry.later(() => calls.push("a3"), "a"), true);
  t.mock.timers.tick(400);
  assert.deepEqual(calls, ["a1", "a2", "a3"]);
  assert.equal(retry.later(() => calls.push("a4"), "a"), false); // three tries for "a"
  assert.equal(retry.waiting, false);

  assert.equal(retry.later(() => calls.push("b1"), "b"), true); // another key: from the first wait
  t.mock.timers.tick(100);
  assert.deepEqual(calls.slice(-1), ["b1"]);
});

test("Retry: one call pending at a time, reset cancels and starts over", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const retry = new Retry(backoff({ steps: [10, 20, 30] }));
  const calls = [];
  retry.later(() => calls.push(1));
  retry.later(() => calls.push(2)); // replaces the first, with the second wait
  t.mock.timers.tick(19);
  assert.deepEqual(calls, []);
  t.mock.timers.tick(1);
  assert.deepEqual(calls, [2]);
  assert.equal(retry.tries, 2);
  retry.later(() => calls.push(3));
  retry.reset();
  assert.equal(retry.waiting, false);
  assert.equal(retry.tries, 0);
  t.mock.timers.tick(1000);
  assert.deepEqual(calls, [2]);
  retry.later(() => calls.push(4));
  t.mock.timers.tick(10);
  assert.deepEqual(calls, [2, 4]);
});

test("Retry without a limit keeps going at the last step", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const retry = new Retry(backoff({ steps: [5, 50] }));
  let calls = 0;
  for (let i = 0; i < 20; i += 1) {
    assert.equal(retry.later(() => (calls += 1)), true);
    t.mock.timers.tick(50);
  }
  assert.equal(calls, 20);
});
