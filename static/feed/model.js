/**
 * What a feed holds, without any DOM: the notifications of `user:<id>` and the person's
 * read position, from which the unread count follows (docs/protocol.md,
 * "Notification feed"). Message data is checked field by field: a wrong type is ignored,
 * and a `url` is kept only when it is http(s).
 * @module feed/model
 */

/** Newest notifications kept for the list; older ones drop off. */
export const KEPT = 100;

/**
 * @typedef {object} Notification
 * @property {number} seq
 * @property {string} epoch
 * @property {number} ts
 * @property {string} title
 * @property {string} body
 * @property {string | null} url an http(s) URL, or null
 */

/**
 * @param {any} value
 * @returns {string | null} the URL when it is an absolute http(s) one
 */
export function safeUrl(value) {
  if (typeof value !== "string") return null;
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch (err) {
    return null;
  }
}

/**
 * @param {import("../realtime/client.js").Message} msg
 * @returns {Notification | null} null when `data` is not a notification
 */
export function notificationOf(msg) {
  const data = msg && msg.data;
  if (!data || typeof data !== "object" || Array.isArray(data)) return null;
  if (typeof data.title !== "string" || !data.title) return null;
  return {
    seq: msg.seq,
    epoch: msg.epoch,
    ts: typeof msg.ts === "number" ? msg.ts : Date.now(),
    title: data.title,
    body: typeof data.body === "string" ? data.body : "",
    url: safeUrl(data.url),
  };
}

/**
 * @param {any} data a message's data
 * @returns {{epoch: string, seq: number} | null} the position of a read marker
 */
export function readMarkerOf(data) {
  const read = data && typeof data === "object" ? data.read : null;
  if (!read || typeof read.epoch !== "string" || !Number.isSafeInteger(read.seq) || read.seq < 0) return null;
  return { epoch: read.epoch, seq: read.seq };
}

export class FeedModel {
  constructor() {
    /** @type {Notification[]} newest first */
    this.items = [];
    /** @type {{epoch: string | null, seq: number}} */
    this.read = { epoch: null, seq: 0 };
    /** @type {string | null} the stream's epoch as subscribed, once known */
    this.epoch = null;
  }

  /** The stream's epoch from a `subscribed` frame or a message: read positions of another are stale. */
  setEpoch(epoch) {
    if (typeof epoch === "string") this.epoch = epoch;
  }

  /**
   * After `recovered: false`: the kept history over HTTP joins the list instead of
   * replacing it, because live messages that arrived while it was in flight may be newer
   * than the page; only items of another epoch go, their numbers mean nothing any more.
   * The epoch is the subscription's: a page of another one (a late answer to a reload
   * from before the stream changed epoch again) is ignored, never followed.
   * @param {{epoch: string, messages: object[]}} page the HTTP history answer
   * @returns {boolean} whether what the page shows changed
   */
  merge(page) {
    if (!page || this.epoch === null || page.epoch !== this.epoch) return false;
    const before = this.items.length;
    this.items = this.items.filter((item) => item.epoch === this.epoch);
    let changed = this.items.length !== before;
    for (const msg of page.messages) if (msg.epoch === this.epoch && this.apply(msg)) changed = true;
    return changed;
  }

  /**
   * Take one message of the feed: a notification joins the list, a read marker moves the
   * read position. Anything else is ignored.
   * @returns {boolean} whether what the page shows changed
   */
  apply(msg) {
    this.setEpoch(msg.epoch);
    const marker = readMarkerOf(msg.data);
    if (marker) return this.setRead(marker);
    const item = notificationOf(msg);
    if (!item || this.items.some((n) => n.epoch === item.epoch && n.seq === item.seq)) return false;
    this.items.push(item);
    this.items.sort((a, b) => (a.epoch === b.epoch ? b.seq - a.seq : b.ts - a.ts));
    this.items.length = Math.min(this.items.length, KEPT);
    return true;
  }

  /**
   * Move the read position forward. A position in another epoch replaces it only when
   * that epoch is the stream's current one (or none is known yet): a slow answer still
   * holding a lost epoch must not overwrite a newer marker of the current one.
   * @param {{epoch: string | null, seq: number}} position
   * @returns {boolean} whether it moved
   */
  setRead(position) {
    if (!position || typeof position.epoch !== "string" || !Number.isSafeInteger(position.seq)) return false;
    if (position.epoch === this.read.epoch) {
      if (position.seq <= this.read.seq) return false;
    } else if (this.epoch !== null && position.epoch !== this.epoch) {
      return false;
    }
    this.read = { epoch: position.epoch, seq: position.seq };
    return true;
  }

  /** @param {Notification} item */
  isUnread(item) {
    return item.epoch !== this.read.epoch || item.seq > this.read.seq;
  }

  get unread() {
    return this.items.filter((item) => this.isUnread(item)).length;
  }
}
