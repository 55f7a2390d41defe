/**
 * The pages' HTTP calls to the API. Every answer is judged by its status first: a proxy's
 * 502 has an HTML body, and a page must say "HTTP 502", not a JSON parse error.
 * @module realtime/http
 */

import { RealtimeError } from "./client.js";

/**
 * @typedef {object} HttpAuth
 * @property {string} [base] the server's origin, e.g. `https://rt.example.com`; default: this page's
 * @property {string | null} [token] a bearer token; without it the session cookie counts (same origin)
 */

/**
 * Send one request to the API and read its JSON answer.
 * @param {string} path from the origin, e.g. `/api/feed/42/read`
 * @param {{method?: string, body?: any, csrf?: string} & HttpAuth} [options] `csrf`: Django's
 *   CSRF token, sent on a session (not token) request that is not a GET
 * @returns {Promise<any>} the decoded body
 * @throws {RealtimeError} for an error status: the API's code (`forbidden`, ...) or
 *   `http_error`, and the `status`; a network failure rejects as `fetch` does
 */
export async function requestJson(path, { method = "GET", body, base = "", token = null, csrf = "" } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  else if (method !== "GET") headers["X-CSRFToken"] = csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(base.replace(/\/$/, "") + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    // A token travels in its header; cookies only count on the site's own pages.
    credentials: token ? "omit" : "same-origin",
  });
  let payload = null;
  try {
    payload = await response.json();
  } catch (err) {
    // not JSON: reported below by status
  }
  if (!response.ok) {
    const error = payload && payload.error ? payload.error : {};
    const refusal = new RealtimeError(error.code || "http_error", error.message || `HTTP ${response.status}`);
    refusal.status = response.status;
    throw refusal;
  }
  return payload;
}

/**
 * Kept messages of `stream` (docs/protocol.md, `GET /api/streams/S/messages`; `before`:
 * its "Older messages over HTTP"). Without `since` or `before`, the last `limit` kept.
 * @param {string} stream `KIND:NAME`
 * @param {{since?: number, before?: number, epoch?: string, limit?: number}} [query]
 * @param {HttpAuth} [auth]
 * @returns {Promise<{stream: string, epoch: string, seq: number, recovered: boolean, messages: object[]}>}
 * @throws {RealtimeError} as {@link requestJson}
 */
export function readMessages(stream, { since, before, epoch, limit } = {}, { base = "", token = null } = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries({ since, before, epoch, limit })) {
    if (value !== undefined && value !== null) params.set(name, String(value));
  }
  const query = params.toString();
  // `:` may stand in a path segment: `KIND:NAME` stays readable in logs and routes.
  const path = `/api/streams/${stream.split(":").map(encodeURIComponent).join(":")}/messages`;
  return requestJson(query ? `${path}?${query}` : path, { base, token });
}
