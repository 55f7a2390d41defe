/**
 * Names and numbers of the wire contract (docs/protocol.md, "WebSocket: GET /ws/" and
 * "Close codes"), kept in one module so the client never spells a magic number twice.
 * @module realtime/constants
 */

/** Connection states; only `RealtimeClient#_setState` moves between them. */
export const State = Object.freeze({
  /** Not connected and not trying: before `connect()`, after `disconnect()` or a terminal close. */
  DISCONNECTED: "disconnected",
  /** Opening a socket, or waiting out the backoff before the next attempt. */
  CONNECTING: "connecting",
  /** The socket is open: subscriptions are (re)sent, queued publishes flushed. */
  CONNECTED: "connected",
});

/** Close codes named by docs/protocol.md that the client itself acts on. */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  ABNORMAL: 1006,
  /** 4500-4999: reconnecting the same way fails again (4501 bad token, 4508 abuse). */
  TERMINAL_FIRST: 4500,
  TERMINAL_LAST: 4999,
  BAD_TOKEN: 4501,
});

/**
 * Whether a close code means "do not reconnect the same way" (docs/protocol.md: 4500-4999).
 * Every other code reconnects: 1006, 1011, 1012 and 4000-4499 by the contract, and the
 * rest (1000, 1001, 1009, ...) the way Centrifugo and Phoenix clients do, since a fresh
 * connection starts from a clean slate.
 * @param {number} code
 * @returns {boolean}
 */
export function isTerminalClose(code) {
  return code >= CloseCode.TERMINAL_FIRST && code <= CloseCode.TERMINAL_LAST;
}

/** `error` frame codes after which the same request may succeed later (same `id`). */
export const RETRYABLE_ERRORS = Object.freeze(new Set(["unavailable", "rate_limited"]));

/** Client timing defaults, in milliseconds. */
export const Defaults = Object.freeze({
  /** Below the ~30 s idle timeouts of common proxies and load balancers. */
  PING_INTERVAL: 25000,
  /** A ping unanswered this long means a dead path the browser has not noticed yet. */
  PONG_TIMEOUT: 10000,
  BACKOFF_BASE: 500,
  BACKOFF_CAP: 10000,
});
