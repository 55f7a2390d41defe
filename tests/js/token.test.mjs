// static/feed/token.js: reading a JWT's claims, when to renew it, and fetching one.
import { test } from "node:test";
import assert from "node:assert/strict";

import { CLOCK_SLACK, MAX_TIMER_DELAY, MIN_RENEW_GAP, claimsOf, fetchToken, renewAt, timerDelay } from "../../static/feed/token.js";

const b64url = (text) => Buffer.from(text).toString("base64").replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const jwt = (claims) => `${b64url('{"alg":"HS256","typ":"JWT"}')}.${b64url(JSON.stringify(claims))}.sig`;

test("claimsOf decodes base64url, unicode included", () => {
  const claims = { sub: "42", name: "Zoë ✓", subs: ["user:42"], exp: 1700000600 };
  assert.deepEqual(claimsOf(jwt(claims)), claims);
  assert.throws(() => claimsOf("nodots"), /not a JWT/);
  assert.throws(() => claimsOf(null), /not a JWT/);
  assert.throws(() => claimsOf(`x.${b64url("null")}.y`), /not a JWT/);
});

const T = 1_700_000_000_000; // ms, this clock

test("a fifth of the life before exp, measured from iat, whatever this clock says", () => {
  const claims = { iat: 1_000, exp: 1_600 }; // 600 s; issued long ago on this clock
  assert.equal(renewAt(claims, T), T + 570_000); // margin capped at 30 s
  assert.equal(renewAt({ iat: 0, exp: 100 }, T), T + 80_000); // 100 s: 20 s before
  assert.equal(renewAt({ iat: 0, exp: 3 }, T), T + 2_000); // 3 s: at least 1 s before
});

test("a cached token: when this clock agrees, the time left until exp counts", () => {
  const now = T;
  const iat = now / 1000 - 500; // minted 500 s ago
  const claims = { iat, exp: iat + 600 }; // 100 s left
  assert.equal(renewAt(claims, now), now + 80_000);
  // This clock far before iat: it is not trusted, the whole life counts.
  const ahead = { iat: now / 1000 + CLOCK_SLACK / 1000 + 10, exp: now / 1000 + CLOCK_SLACK / 1000 + 610 };
  assert.equal(renewAt(ahead, now), now + 570_000);
  // This clock already past exp: the life from iat counts.
  assert.equal(renewAt({ iat: now / 1000 - 700, exp: now / 1000 - 100 }, now), now + 570_000);
});

test("without iat exp is read on this clock, and renewals are at least MIN_RENEW_GAP apart", () => {
  assert.equal(renewAt({ exp: T / 1000 + 300 }, T), T + 270_000);
  assert.equal(renewAt({ exp: T / 1000 - 3600 }, T), T + MIN_RENEW_GAP); // this clock is ahead
  assert.equal(renewAt({ exp: T / 1000 + 4 }, T), T + 3_000);
});

test("never sooner than half the life after it arrived", () => {
  // 10 s life: a fifth (2 s) before exp is 8 s, more than half: 8 s.
  assert.equal(renewAt({ iat: 0, exp: 10 }, T), T + 8_000);
  // A gap asked for by the caller below the life's half.
  assert.equal(renewAt({ exp: T / 1000 - 1 }, T, 5_000), T + 5_000);
});

test("timerDelay is capped for setTimeout and never negative", () => {
  assert.equal(timerDelay(T + 1234, T), 1234);
  assert.equal(timerDelay(T - 5, T), 0);
  assert.equal(timerDelay(T + 40 * 86_400_000, T), MAX_TIMER_DELAY);
  assert.equal(MAX_TIMER_DELAY, 2 ** 31 - 1);
});

test("fetchToken takes JSON or bare text and refuses what is not a token", async (t) => {
  const token = jwt({ subs: ["user:1"], iat: 1, exp: 2 });
  const answers = [
    new Response(JSON.stringify({ token }), { headers: { "Content-Type": "application/json" } }),
    new Response(`  ${token}\n`, { headers: { "Content-Type": "text/plain" } }),
    new Response("nope", { status: 500 }),
    new Response(JSON.stringify({}), { headers: { "Content-Type": "application/json" } }),
    new Response("not-a-jwt", { headers: { "Content-Type": "text/plain" } }),
  ];
  const asked = [];
  t.mock.method(globalThis, "fetch", async (url, init) => {
    asked.push([url, init.cache]);
    return answers.shift();
  });
  assert.equal(await fetchToken("/rt-token"), token);
  assert.equal(await fetchToken("/rt-token"), token);
  await assert.rejects(fetchToken("/rt-token"), /answered 500/);
  await assert.rejects(fetchToken("/rt-token"), /no token/);
  await assert.rejects(fetchToken("/rt-token"), /not a JWT/);
  assert.deepEqual(asked[0], ["/rt-token", "no-store"]);
});
