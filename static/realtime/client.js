/**
 * The browser client of the wire contract (docs/protocol.md, "WebSocket: GET /ws/" and "The
 * delivery promise"). One socket carries every stream; on a drop the client reconnects
 * with backoff and resubscribes each stream with `since` its last (epoch, seq), so the
 * page sees every message once, in order, or is told with `recovered: false` that it
 * must reload (docs/architecture.md, "The promise").
 *
 * ```js
 * const rt = new RealtimeClient({ token });            // url defaults to this origin's /ws/
 * const sub = rt.subscribe("room:lobby", { history: 50, onMessage, onRecoveryFailed });
 * const ack = await rt.publish("room:lobby", { text: "hi" });
 * const off = rt.on("state", ({ oldState, newState }) => {});
 * ```
 * @module realtime/client
 */

import { fullJitterBackoff } from "./backoff.js";
import { CloseCode, Defaults, RETRYABLE_ERRORS, State, isTerminalClose } from "./constants.js";
import { Emitter } from "./emitter.js";

export { CloseCode, State, fullJitterBackoff };

/** An `error` frame, or a publish that can no longer succeed, as an Error. */
export class RealtimeError extends Error {
  /**
   * @param {string} code a docs/protocol.md error code (`forbidden`, `bad_request`, ...) or `disconnected`
   * @param {string} message
   * @param {object} [frame] the `error` frame, when there was one
   */
  constructor(code, message, frame) {
    super(`${code}: ${message}`);
    this.name = "RealtimeError";
    this.code = code;
    this.frame = frame;
  }
}

/**
 * @typedef {object} Message a `message` frame (docs/protocol.md)
 * @property {string} stream
 * @property {number} seq
 * @property {string} epoch
 * @property {number} ts server receive time, ms since 1970
 * @property {any} data
 * @property {{id: string, name: string} | null} sender
 */

/**
 * @typedef {object} SubscribeOptions
 * @property {number} [history] ask for the last K kept messages on the first subscribe
 * @property {{epoch: string, seq: number}} [since] start after this position instead
 * @property {boolean} [occupancy] also receive `occupancy` frames (how many are here)
 * @property {(msg: Message) => void} [onMessage] each message once, in seq order
 * @property {(info: {stream: string, epoch: string, seq: number}) => void} [onRecoveryFailed]
 *   the server could not fill a gap: reload what the page shows (over HTTP), delivery goes on after `seq`
 * @property {(info: {stream: string, epoch: string, seq: number, recovered: boolean}) => void} [onSubscribed]
 * @property {(err: RealtimeError) => void} [onError] the subscribe was refused (`forbidden`, ...)
 */

/**
 * One stream of a client. It remembers its position (epoch, last seq) across
 * reconnects and drops any message at or below it.
 */
export class Subscription {
  /**
   * @param {RealtimeClient} client
   * @param {string} stream
   * @param {SubscribeOptions} options
   */
  constructor(client, stream, options) {
    this.client = client;
    this.stream = stream;
    this.options = options;
    /** @type {string | null} */
    this.epoch = options.since ? options.since.epoch : null;
    /** @type {number | null} the last seq passed to the page, or the position to resume from */
    this.seq = options.since ? options.since.seq : null;
    /** True between a `subscribe` frame and its `subscribed` reply on the current socket. */
    this.pending = false;
  }

  /** Stop receiving this stream; the position is forgotten. */
  unsubscribe() {
    this.client._unsubscribe(this);
  }

  /** @returns {object} the `subscribe` frame that resumes from where this one stands */
  _frame() {
    const frame = { type: "subscribe", stream: this.stream };
    if (this.epoch !== null && this.seq !== null) {
      frame.since = { epoch: this.epoch, seq: this.seq };
    } else if (this.options.history) {
      frame.history = this.options.history;
    }
    if (this.options.occupancy) frame.occupancy = true; // `occupancy` frames (1.1) too
    return frame;
  }

  /** @param {object} frame a `subscribed` frame */
  _onSubscribed(frame) {
    const resumed = this.pending && this.epoch !== null && this.seq !== null;
    this.pending = false;
    const info = { stream: this.stream, epoch: frame.epoch, seq: frame.seq, recovered: frame.recovered };
    if (!frame.recovered) {
      // The gap cannot be filled: delivery goes on after `seq` in this epoch.
      this.epoch = frame.epoch;
      this.seq = frame.seq;
      this._call("onSubscribed", info);
      this._call("onRecoveryFailed", { stream: this.stream, epoch: frame.epoch, seq: frame.seq });
      this.client.emitter.emit("recoveryFailed", { stream: this.stream, epoch: frame.epoch, seq: frame.seq });
      return;
    }
    if (!resumed) {
      this.epoch = frame.epoch;
      // With `history`, messages up to `seq` follow this frame; without, nothing at or
      // below it will come, so it is already our position.
      this.seq = this.options.history && frame.seq > 0 ? null : frame.seq;
    }
    this._call("onSubscribed", info);
  }

  /** @param {Message} msg */
  _onMessage(msg) {
    if (this.epoch === msg.epoch && this.seq !== null && msg.seq <= this.seq) {
      return; // already passed on: a replay after reconnect overlapping live delivery
    }
    this.epoch = msg.epoch;
    this.seq = msg.seq;
    this._call("onMessage", msg);
    this.client.emitter.emit("message", msg);
  }

  _call(name, payload) {
    const fn = this.options[name];
    if (typeof fn === "function") {
      try {
        fn(payload);
      } catch (err) {
        setTimeout(() => {
          throw err;
        });
      }
    }
  }
}

/**
 * @typedef {object} ClientOptions
 * @property {string} [url] the `/ws/` endpoint; default: this page's origin
 * @property {string} [token] a JWT, sent as `?token=`; without it the session cookie counts (same origin)
 * @property {typeof WebSocket} [WebSocket] the constructor to use; tests pass one that scripts failures
 * @property {import("./backoff.js").Backoff} [backoff] ms to wait before retry N (default: full jitter, capped)
 * @property {number} [pingInterval] ms between pings (default 25 s)
 * @property {number} [pongTimeout] ms to wait for a pong before dropping the socket
 * @property {() => string} [newId] publish ids (default `crypto.randomUUID`)
 * @property {boolean} [watchNetwork] drop the socket on the window's `offline` event and reconnect on `online` (default true)
 * @property {boolean} [autoConnect] connect in the constructor (default true)
 */

/**
 * A connection to the server that survives drops. Events (`on(name, fn)` returns the
 * function that stops listening):
 * - `state` `{oldState, newState}`: every change of {@link State}, from one place
 * - `connected` `{}`; `disconnected` `{code, reason, reconnect}`
 * - `closed` `{code, reason}`: a 4500-4999 close; the client stops (docs/protocol.md)
 * - `recoveryFailed` `{stream, epoch, seq}`; `message` (each delivered message)
 * - `error` an `error` frame that matched no request
 */
export class RealtimeClient {
  /** @param {ClientOptions} [options] */
  constructor(options = {}) {
    this.url = options.url || wsUrl();
    this.token = options.token || null;
    this.WebSocket = options.WebSocket || globalThis.WebSocket;
    this.backoff = options.backoff || fullJitterBackoff();
    this.pingInterval = options.pingInterval ?? Defaults.PING_INTERVAL;
    this.pongTimeout = options.pongTimeout ?? Defaults.PONG_TIMEOUT;
    this.newId = options.newId || randomId;
    this.emitter = new Emitter();
    /** @type {string} */
    this.state = State.DISCONNECTED;
    /** @type {Map<string, Subscription>} */
    this.subs = new Map();
    /** Unacknowledged publishes by id, in the order they were made. */
    this.outgoing = new Map();
    /** Bumped for every socket: callbacks of an older socket see a stale number and return. */
    this._generation = 0;
    this._ws = null;
    this._attempt = 0;
    this._reconnectTimer = null;
    this._pingTimer = null;
    this._pongTimer = null;
    this._wanted = false;
    this._listeners = [];
    if (options.watchNetwork !== false && typeof window !== "undefined" && window.addEventListener) {
      const offline = () => this._onNetworkLost();
      const online = () => this._onNetworkBack();
      window.addEventListener("offline", offline);
      window.addEventListener("online", online);
      this._listeners.push(() => window.removeEventListener("offline", offline));
      this._listeners.push(() => window.removeEventListener("online", online));
    }
    if (options.autoConnect !== false) this.connect();
  }

  /**
   * @param {string} event
   * @param {(payload: any) => void} handler
   * @returns {() => void} unsubscribe
   */
  on(event, handler) {
    return this.emitter.on(event, handler);
  }

  /** Start connecting (and keep reconnecting) until `disconnect()` or a terminal close. */
  connect() {
    if (this._wanted) return;
    this._wanted = true;
    this._attempt = 0;
    this._open();
  }

  /** Close the socket and stop reconnecting; pending publishes stay queued for `connect()`. */
  disconnect() {
    this._wanted = false;
    this._dropSocket(CloseCode.NORMAL, "client disconnect");
    this._setState(State.DISCONNECTED);
  }

  /** `disconnect()` and forget the window listeners: the client cannot be used after. */
  destroy() {
    this.disconnect();
    for (const off of this._listeners.splice(0)) off();
    for (const entry of this.outgoing.values()) entry.reject(new RealtimeError("disconnected", "client destroyed"));
    this.outgoing.clear();
  }

  /**
   * Subscribe to a stream. Messages reach `options.onMessage` once each, in seq order,
   * across reconnects.
   * @param {string} stream `KIND:NAME`
   * @param {SubscribeOptions} [options]
   * @returns {Subscription}
   */
  subscribe(stream, options = {}) {
    if (this.subs.has(stream)) throw new Error(`already subscribed to ${stream}`);
    const sub = new Subscription(this, stream, options);
    this.subs.set(stream, sub);
    if (this.state === State.CONNECTED) this._sendSubscribe(sub);
    return sub;
  }

  /**
   * Publish `data` on `stream`. While offline the publish waits in a queue; it is sent
   * (again) with the same `id` on every reconnect until an `ack` comes, which the server
   * accepts once (docs/protocol.md, `publish`).
   * @param {string} stream
   * @param {any} data
   * @param {{id?: string}} [options]
   * @returns {Promise<{id: string, stream: string, seq: number, epoch: string}>} the ack;
   *   rejects with a {@link RealtimeError} for a refusal (`forbidden`, `bad_request`, `too_large`)
   */
  publish(stream, data, options = {}) {
    const id = options.id || this.newId();
    return new Promise((resolve, reject) => {
      const entry = { id, stream, data, resolve, reject, retryTimer: null };
      this.outgoing.set(id, entry);
      if (this.state === State.CONNECTED) this._sendPublish(entry);
    });
  }

  /**
   * Send a frame of a protocol extension (`presence`, `typing`: docs/protocol.md,
   * "Extensions of this server") on the current socket. Not queued: such frames are hints
   * that a page sends again later.
   * @param {object} frame
   * @returns {boolean} false when not connected
   */
  send(frame) {
    return this._send(frame);
  }

  // --- the one place the state changes ------------------------------------------------

  _setState(newState) {
    const oldState = this.state;
    if (oldState === newState) return;
    this.state = newState;
    this.emitter.emit("state", { oldState, newState });
  }

  // --- sockets ---------------------------------------------------------------------------

  _open() {
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    if (!this._wanted) return;
    if (typeof navigator !== "undefined" && navigator.onLine === false && this._listeners.length) {
      // Wait for the window's `online` event rather than burn attempts on a dead link.
      this._setState(State.CONNECTING);
      return;
    }
    const generation = ++this._generation;
    const url = this.token ? `${this.url}${this.url.includes("?") ? "&" : "?"}token=${encodeURIComponent(this.token)}` : this.url;
    this._setState(State.CONNECTING);
    let ws;
    try {
      ws = new this.WebSocket(url);
    } catch (err) {
      this._scheduleReconnect();
      return;
    }
    this._ws = ws;
    ws.onopen = () => generation === this._generation && this._onOpen();
    ws.onmessage = (event) => generation === this._generation && this._onText(event.data);
    ws.onclose = (event) => generation === this._generation && this._onClose(event.code, event.reason || "");
    ws.onerror = () => {}; // a close event always follows, with the code
  }

  _onOpen() {
    this._attempt = 0;
    this._setState(State.CONNECTED);
    for (const sub of this.subs.values()) this._sendSubscribe(sub);
    for (const entry of this.outgoing.values()) this._sendPublish(entry);
    this._startPing();
    this.emitter.emit("connected", {});
  }

  _onClose(code, reason) {
    this._dropSocket();
    const terminal = isTerminalClose(code);
    const reconnect = this._wanted && !terminal;
    this.emitter.emit("disconnected", { code, reason, reconnect });
    if (terminal) {
      this._wanted = false;
      this._setState(State.DISCONNECTED);
      this.emitter.emit("closed", { code, reason });
      return;
    }
    if (reconnect) this._scheduleReconnect();
    else this._setState(State.DISCONNECTED);
  }

  _scheduleReconnect() {
    if (!this._wanted) return;
    this._setState(State.CONNECTING);
    this._attempt += 1;
    const delay = Math.max(0, this.backoff(this._attempt));
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = setTimeout(() => this._open(), delay);
  }

  /** Forget the current socket (its callbacks become stale) and every timer. */
  _dropSocket(code = CloseCode.NORMAL, reason = "") {
    this._generation += 1;
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    clearInterval(this._pingTimer);
    clearTimeout(this._pongTimer);
    this._pingTimer = this._pongTimer = null;
    for (const entry of this.outgoing.values()) {
      clearTimeout(entry.retryTimer);
      entry.retryTimer = null;
    }
    for (const sub of this.subs.values()) sub.pending = false;
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close(code, reason);
      } catch (err) {
        // already closing or closed
      }
    }
  }

  /** A socket that stopped answering: drop it and reconnect as after a 1006. */
  _abandon(reason) {
    if (!this._ws) return;
    this._dropSocket(CloseCode.NORMAL, reason);
    this.emitter.emit("disconnected", { code: CloseCode.ABNORMAL, reason, reconnect: this._wanted });
    this._scheduleReconnect();
  }

  _onNetworkLost() {
    if (this._wanted) this._abandon("network offline");
  }

  _onNetworkBack() {
    if (this._wanted && this.state !== State.CONNECTED) {
      this._attempt = 0;
      this._open();
    }
  }

  _startPing() {
    clearInterval(this._pingTimer);
    this._pingTimer = setInterval(() => {
      if (this._pongTimer !== null) return; // the last ping is still unanswered: its deadline stands
      this._send({ type: "ping" });
      this._pongTimer = setTimeout(() => this._abandon("no pong"), this.pongTimeout);
    }, this.pingInterval);
  }

  _send(frame) {
    if (!this._ws || this.state !== State.CONNECTED) return false;
    this._ws.send(JSON.stringify(frame));
    return true;
  }

  _sendSubscribe(sub) {
    sub.pending = true;
    this._send(sub._frame());
  }

  _sendPublish(entry) {
    clearTimeout(entry.retryTimer);
    entry.retryTimer = null;
    this._send({ type: "publish", stream: entry.stream, data: entry.data, id: entry.id });
  }

  _unsubscribe(sub) {
    if (this.subs.get(sub.stream) !== sub) return;
    this.subs.delete(sub.stream);
    this._send({ type: "unsubscribe", stream: sub.stream });
  }

  // --- frames in -------------------------------------------------------------------------

  _onText(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch (err) {
      return;
    }
    // Any frame shows the path is alive.
    clearTimeout(this._pongTimer);
    this._pongTimer = null;
    switch (frame.type) {
      case "message": {
        const sub = this.subs.get(frame.stream);
        if (sub) sub._onMessage(frame);
        break;
      }
      case "subscribed": {
        const sub = this.subs.get(frame.stream);
        if (sub) sub._onSubscribed(frame);
        break;
      }
      case "ack":
        this._onAck(frame);
        break;
      case "error":
        this._onError(frame);
        break;
      default:
        this.emitter.emit(frame.type, frame); // pong, unsubscribed, and extensions
    }
  }

  _onAck(frame) {
    const entry = this.outgoing.get(frame.id);
    if (!entry) return;
    this.outgoing.delete(frame.id);
    clearTimeout(entry.retryTimer);
    entry.resolve({ id: frame.id, stream: frame.stream, seq: frame.seq, epoch: frame.epoch });
  }

  _onError(frame) {
    const entry = frame.id !== undefined ? this.outgoing.get(frame.id) : undefined;
    if (entry) {
      if (RETRYABLE_ERRORS.has(frame.code)) {
        // Same id again later: the server accepts it once however often it is sent.
        const wait = frame.retry_after ? frame.retry_after * 1000 : this.backoff(1) + 250;
        entry.retryTimer = setTimeout(() => this._sendPublish(entry), wait);
        return;
      }
      this.outgoing.delete(frame.id);
      entry.reject(new RealtimeError(frame.code, frame.message, frame));
      return;
    }
    const sub = frame.stream !== undefined ? this.subs.get(frame.stream) : undefined;
    if (sub && sub.pending) {
      sub.pending = false;
      if (RETRYABLE_ERRORS.has(frame.code)) {
        // Only on this socket: a reconnect resubscribes every stream by itself.
        const generation = this._generation;
        setTimeout(() => {
          if (generation === this._generation && this.subs.get(sub.stream) === sub && !sub.pending) this._sendSubscribe(sub);
        }, this.backoff(1) + 250);
        return;
      }
      this.subs.delete(sub.stream);
      sub._call("onError", new RealtimeError(frame.code, frame.message, frame));
      return;
    }
    this.emitter.emit("error", new RealtimeError(frame.code, frame.message, frame));
  }
}

let pageShared = null;

/**
 * The page's one connection, made on first use: the modules of one page (the room, the
 * bell, a scoreboard) multiplex their streams over it instead of each opening a socket.
 * @returns {RealtimeClient}
 */
export function pageClient() {
  if (!pageShared) pageShared = new RealtimeClient();
  return pageShared;
}

/**
 * A random UUID for a publish `id`. `crypto.randomUUID` exists only in secure contexts
 * (https, localhost); a page served over plain http on a LAN address gets the same
 * format from `crypto.getRandomValues`, which every context has.
 * @returns {string}
 */
export function randomId() {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The `/ws/` endpoint of the server at `origin`: by default the one that served this page;
 * the embed passes the origin it was loaded from.
 * @param {{protocol: string, host: string}} [origin] a `Location` or `URL`
 * @returns {string} `ws(s)://<host>/ws/`
 */
export function wsUrl(origin = globalThis.location) {
  return `${origin.protocol === "https:" ? "wss" : "ws"}://${origin.host}/ws/`;
}
