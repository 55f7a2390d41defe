/**
 * The feed's HTTP calls: the read position (`/api/feed/{id}/read`) and the kept history
 * (`/api/streams/user:{id}/messages`), with a bearer token (any origin) or the session
 * cookie and its CSRF token (the site's own pages).
 * @module feed/http
 */

/** A refusal of the API, with its PROTOCOL.md code (`forbidden`, `unauthorized`, ...). */
export class FeedHttpError extends Error {
  constructor(status, code, message) {
    super(`${code}: ${message}`);
    this.name = "FeedHttpError";
    this.status = status;
    this.code = code;
  }
}

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
    return this._call("GET", `/api/streams/user:${encodeURIComponent(this.userId)}/messages?limit=${limit}`);
  }

  async _call(method, path, body) {
    const headers = {};
    const token = this.token();
    if (token) headers.Authorization = `Bearer ${token}`;
    else if (method !== "GET") headers["X-CSRFToken"] = this.csrf;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(this.base + path, {
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
      throw new FeedHttpError(response.status, error.code || "http_error", error.message || `HTTP ${response.status}`);
    }
    return payload;
  }
}
