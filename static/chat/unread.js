/**
 * The unread counts of the room list (the chat 1.1 page contract, "Room list live unread counts"), without
 * any DOM: the server's count at load, one more for each chat message of someone else that
 * arrives, and on a `read` frame (the person read that conversation on some page) the
 * messages after the read position. The list subscribes without history, so the latest
 * seq it knows of a stream is the `subscribed` frame's `seq` or the last message since.
 * @module chat/unread
 */

import { correctionOf } from "./corrections.js";

/**
 * @typedef {object} StreamCount
 * @property {number} unread
 * @property {number} latest the latest seq known, 0 before `subscribed`
 * @property {string | null} epoch of `latest`
 */

export class UnreadCounts {
  /**
   * @param {object} options
   * @param {string | null} options.me the reader's user id: their own messages are read
   * @param {Record<string, number>} options.initial the server's counts at load, by stream
   */
  constructor({ me, initial }) {
    this.me = me;
    /** @type {Map<string, StreamCount>} */
    this.streams = new Map(
      Object.entries(initial).map(([stream, unread]) => [stream, { unread: Math.max(0, unread | 0), latest: 0, epoch: null }]),
    );
  }

  has(stream) {
    return this.streams.has(stream);
  }

  /** @returns {number} */
  unread(stream) {
    const known = this.streams.get(stream);
    return known ? known.unread : 0;
  }

  /**
   * The `subscribed` reply: where the stream stood (a resubscribe's replay follows as messages).
   * @returns {number | null} the count, null for a stream not listed
   */
  subscribed(stream, { epoch, seq }) {
    const known = this.streams.get(stream);
    if (!known) return null;
    if (known.epoch !== epoch) known.latest = 0; // a new numbering: the old seqs mean nothing in it
    known.epoch = epoch;
    known.latest = Math.max(known.latest, seq);
    return known.unread;
  }

  /**
   * A message of a listed stream: a chat message of someone else is one more unread;
   * corrections, a backend's JSON and one's own are not.
   * @param {import("../realtime/client.js").Message} msg
   * @returns {number | null} the count, null for a stream not listed
   */
  message(msg) {
    const known = this.streams.get(msg.stream);
    if (!known) return null;
    if (known.epoch !== msg.epoch) known.latest = 0;
    known.epoch = msg.epoch;
    known.latest = Math.max(known.latest, msg.seq);
    if (isChat(msg.data) && !(msg.sender && msg.sender.id === this.me)) known.unread += 1;
    return known.unread;
  }

  /**
   * A `read` frame: the person read `stream` up to `seq`. What is left is what this page
   * knows to lie after it (edits and one's own included: the server does not say which
   * seqs were chat). A position in another epoch than the one this page follows says
   * nothing of its seqs.
   * @param {{stream: string, epoch: string, seq: number}} frame
   * @returns {number | null} the count, null when unchanged or not listed
   */
  read({ stream, epoch, seq }) {
    const known = this.streams.get(stream);
    if (!known || !Number.isInteger(seq)) return null;
    if (known.epoch !== null && epoch !== known.epoch) return null;
    known.unread = Math.max(0, known.latest - seq);
    return known.unread;
  }

  /** The server's count again (after a `recovered: false`, when messages went by unseen). */
  reset(stream, unread) {
    const known = this.streams.get(stream);
    if (!known) return null;
    known.unread = Math.max(0, unread | 0);
    return known.unread;
  }
}

function isChat(data) {
  return Boolean(data) && typeof data.text === "string" && correctionOf(data) === null;
}
