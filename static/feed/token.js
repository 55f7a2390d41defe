/**
 * Tokens for the embed: read a JWT's claims (no check: the server checks), and fetch fresh
 * ones from the embedding site's backend (`data-token-url`).
 * @module feed/token
 */

/**
 * @param {string} token a JWT
 * @returns {{exp?: number, sub?: string} & Record<string, any>} its claims
 * @throws {Error} when it is not a JWT
 */
export function claimsOf(token) {
  const part = typeof token === "string" ? token.split(".")[1] : undefined;
  if (!part) throw new Error("not a JWT");
  const base64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
  const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))));
  if (!claims || typeof claims !== "object") throw new Error("not a JWT");
  return claims;
}

/** The longest delay `setTimeout` honours (2^31 - 1 ms, about 24.8 days): browsers fire a longer one at once. */
export const MAX_TIMER_DELAY = 2 ** 31 - 1;

/**
 * The shortest time between two renewals for a token whose life cannot be told (no `iat`,
 * and this browser's clock already past its `exp`): without it, a clock ahead of the
 * server's by more than a token's life would renew every second.
 */
export const MIN_RENEW_GAP = 30_000;

/** How far before the token's `iat` this browser's clock may read and still be trusted, in ms. */
export const CLOCK_SLACK = 60_000;

/**
 * When to replace a token, in this browser's ms since 1970: a fifth of its life before it
 * ends (between 1 and 30 s), and never sooner than half its life (at most `minGap`) after
 * it arrived. Its life is `exp - iat` measured from the fetch when it has `iat`, so a
 * browser clock that is off changes nothing; without `iat`, `exp` is read on this clock.
 * A token URL may serve a token that is still good but not fresh (a cache): when this
 * clock agrees with the token (no more than {@link CLOCK_SLACK} before `iat`, and before
 * `exp`), the time left until `exp` on this clock counts when it is shorter.
 * @param {{exp: number, iat?: number}} claims
 * @param {number} fetchedAt ms since 1970, this clock, when the token arrived
 * @param {number} [minGap] ms
 */
export function renewAt(claims, fetchedAt, minGap = MIN_RENEW_GAP) {
  const hasIat = typeof claims.iat === "number";
  let life = hasIat ? (claims.exp - claims.iat) * 1000 : claims.exp * 1000 - fetchedAt;
  if (hasIat && clockAgrees(claims, fetchedAt)) life = Math.min(life, claims.exp * 1000 - fetchedAt);
  const gap = life > 0 ? Math.min(minGap, Math.max(1000, life / 2)) : minGap;
  const margin = Math.min(30_000, Math.max(1000, life / 5));
  return fetchedAt + Math.max(gap, life - margin);
}

/**
 * @param {{exp: number, iat: number}} claims
 * @param {number} now ms since 1970, this clock
 * @returns {boolean} whether this clock reads a time the token could have been issued and still be good at
 */
function clockAgrees(claims, now) {
  return now >= claims.iat * 1000 - CLOCK_SLACK && now < claims.exp * 1000;
}

/**
 * @param {number} at ms since 1970
 * @param {number} [now]
 * @returns {number} a delay for `setTimeout` towards `at`: capped, so a far `at` needs re-arming when it fires
 */
export function timerDelay(at, now = Date.now()) {
  return Math.min(MAX_TIMER_DELAY, Math.max(0, at - now));
}

/**
 * Ask the embedding site's backend for a token. It answers `{"token": JWT}` (or the bare
 * token as text); its own cookies go with the request when it is on the page's origin.
 * @param {string} url
 * @returns {Promise<string>}
 */
export async function fetchToken(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
  if (!response.ok) throw new Error(`the token URL answered ${response.status}`);
  const type = response.headers.get("Content-Type") || "";
  const token = type.includes("json") ? (await response.json()).token : (await response.text()).trim();
  if (typeof token !== "string" || !token) throw new Error("the token URL answered no token");
  claimsOf(token);
  return token;
}
