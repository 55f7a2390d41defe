/**
 * The feed's HTTP calls: the read position (`/api/feed/{id}/read`) and the kept history
 * (`/api/streams/user:{id}/messages`), with a bearer token (any origin) or the session
 * cookie and its CSRF token (the site's own pages). A refusal rejects with a
 * {@link RealtimeError} carrying the API's code (`forbidden`, `unauthorized`, ...).
 * @module feed/http
 */

import { readMessages, requestJson } from "../realtime/http.js";

export class FeedHttp {
  /**
   * @param {object} options
   * @param {string} options.base the server's origin, e.g. `https://rt.example.com`
   * @param {string} options.userId the feed's user id
   * @param {() => string | null} [options.token] the current bearer token, if any
   * @param {string} [options.csrf] Django's CSRF token, for session POSTs
   */
  constructor({ base, userId, token, csrf }) {
    this.base = base.replace(/\/$/, "");
    this.userId = userId;
    this.token = token || (() => null);
    this.csrf = csrf || "";
  }

  /** @returns {Promise<{stream: string, epoch: string | null, seq: number}>} */
  readPosition() {
    return this._call("GET", `/api/feed/${encodeURIComponent(this.userId)}/read`);
  }

  /** @returns {Promise<{stream: string, epoch: string | null, seq: number}>} the position kept */
  markRead(epoch, seq) {
    return this._call("POST", `/api/feed/${encodeURIComponent(this.userId)}/read`, { epoch, seq });
  }

  /** @returns {Promise<{epoch: string, seq: number, messages: object[]}>} the last `limit` kept messages */
  history(limit) {
    return readMessages(`user:${this.userId}`, { limit }, { base: this.base, token: this.token() });
  }

  _call(method, path, body) {
    return requestJson(path, { method, body, base: this.base, token: this.token(), csrf: this.csrf });
  }
}
