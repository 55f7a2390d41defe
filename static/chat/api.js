/**
 * The chat pages' writes over HTTP (the chat 1.1 page contract, "HTTP API"): read positions, mutes and bans, and
 * the conversations of the room list. Session cookie plus Django's CSRF token, as the
 * feed's bell does (feed/http.js); a refusal rejects with a RealtimeError carrying the
 * API's code and status (realtime/http.js).
 * @module chat/api
 */

import { requestJson } from "../realtime/http.js";

/**
 * Django's CSRF token: the `csrftoken` cookie (not HttpOnly here), else the one the bell
 * carries (`data-csrf`, templates/feed/bell.html), else a form's hidden input.
 * @param {Document} [doc]
 * @returns {string}
 */
export function csrfToken(doc = document) {
  const cookie = doc.cookie.split(";").map((part) => part.trim()).find((part) => part.startsWith("csrftoken="));
  if (cookie) return decodeURIComponent(cookie.slice("csrftoken=".length));
  const carrier = doc.querySelector("[data-csrf]");
  if (carrier && carrier.dataset.csrf) return carrier.dataset.csrf;
  const input = doc.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

/**
 * @param {string} stream `KIND:NAME`
 * @returns {string} it as a path segment; `:` stays, as in the stream API's paths
 */
export function streamSegment(stream) {
  return stream.split(":").map(encodeURIComponent).join(":");
}

/** Calls of one page, with its CSRF token. */
export class ChatApi {
  /** @param {{csrf?: () => string}} [options] the token, read when a call is made */
  constructor({ csrf = () => csrfToken() } = {}) {
    this.csrf = csrf;
  }

  /** @returns {Promise<{stream: string, epoch: string, seq: number}>} the position kept */
  markRead(stream, { epoch, seq }) {
    return this._call("POST", `/api/read/${streamSegment(stream)}`, { epoch, seq });
  }

  /** Mute (`on`) or unmute `userId` on `stream`; moderators only (403 otherwise). */
  setMuted(stream, userId, on) {
    return this._call(on ? "PUT" : "DELETE", `/api/streams/${streamSegment(stream)}/mutes/${encodeURIComponent(userId)}`);
  }

  /** Ban (`on`) or lift the ban of `userId` on `stream`; moderators only. */
  setBanned(stream, userId, on) {
    return this._call(on ? "PUT" : "DELETE", `/api/streams/${streamSegment(stream)}/bans/${encodeURIComponent(userId)}`);
  }

  /** @returns {Promise<{conversations: object[]}>} */
  conversations() {
    return this._call("GET", "/api/conversations");
  }

  _call(method, path, body) {
    return requestJson(path, { method, body, csrf: method === "GET" ? "" : this.csrf() });
  }
}
