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

/**
 * Milliseconds until a token should be replaced: a fifth of its remaining life before
 * `exp`, at least one second before and never sooner than one second from now.
 * @param {number} exp seconds since 1970
 * @param {number} [now] ms since 1970
 */
export function renewDelay(exp, now = Date.now()) {
  const left = exp * 1000 - now;
  const margin = Math.min(30_000, Math.max(1000, left / 5));
  return Math.max(1000, left - margin);
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
