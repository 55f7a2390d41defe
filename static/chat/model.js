/**
 * What a room page shows, without any DOM: the confirmed messages of the current epoch by
 * seq, the person's own publishes still waiting for their `ack` (or refused), and where
 * seqs are missing between shown messages (holes). The view draws from it and the history
 * pager asks it which ranges to load; neither keeps a list of its own.
 *
 * Edits and deletions (chat/corrections.js) have seqs of their own: they are kept by seq
 * like messages, so that they count as present (no hole to fill where one stands), but
 * never drawn; what they say is folded into the message they target, whichever of the two
 * arrives first.
 * @module chat/model
 */

import { Corrections, correctionOf } from "./corrections.js";

/**
 * @typedef {object} ShownMessage
 * @property {number} seq
 * @property {string} epoch
 * @property {number} ts server receive time, ms since 1970
 * @property {string} text what is shown, as text
 * @property {string | null} senderName null: a message of the server (no sender)
 * @property {string | null} senderId
 * @property {boolean} mine written by the person reading
 * @property {true} [edited] its text is the newest edit's
 * @property {true} [deleted] withdrawn: `text` is empty
 * @property {true} [raw] not a chat message (`{"text"}`): its data shown as JSON, never corrected
 */

/**
 * @typedef {object} CorrectionEntry the seq of an edit or a deletion: present, not drawn
 * @property {number} seq
 * @property {string} epoch
 * @property {number} ts
 * @property {import("./corrections.js").Correction} correction
 */

/**
 * @typedef {object} PendingPublish one of the person's own messages not confirmed yet
 * @property {number} key the page's own number for it
 * @property {string} text
 * @property {number} ts when it was written, this clock
 * @property {"pending" | "failed"} state
 * @property {string | null} error why it was not sent, once failed
 */

/**
 * A hole between two shown messages: the seqs strictly between `below` and `above` are missing.
 * @typedef {{above: number, below: number}} Hole
 */

/**
 * @param {any} data a message's data
 * @returns {string} what the page shows of it
 */
export function textOf(data) {
  if (data && typeof data.text === "string") return data.text;
  return JSON.stringify(data); // not a chat message: still shown, still as text
}

/**
 * @param {Hole} hole
 * @returns {number} how many seqs are missing in it
 */
export function holeSize(hole) {
  return hole.above - hole.below - 1;
}

export class RoomModel {
  /** @param {{me?: {id: string, name: string} | null}} [options] the person reading, if signed in */
  constructor({ me = null } = {}) {
    this.me = me;
    /** @type {string | null} */
    this.epoch = null;
    /** @type {Map<number, ShownMessage | CorrectionEntry>} */
    this.messages = new Map();
    /** What the corrections of this epoch make of their targets, loaded or not. */
    this.corrections = new Corrections();
    /** @type {number[]} the shown seqs, ascending */
    this._seqs = [];
    /** @type {Map<number, PendingPublish>} in the order they were written */
    this.pending = new Map();
    this._nextKey = 1;
  }

  /**
   * Follow the stream into `epoch`. Seqs of another epoch mean nothing in this one, so a
   * new epoch forgets every shown message (own publishes not confirmed yet stay).
   * @returns {boolean} whether the epoch changed and the messages were forgotten
   */
  setEpoch(epoch) {
    if (this.epoch === epoch) return false;
    this.epoch = epoch;
    this.messages.clear();
    this.corrections.clear();
    this._seqs = [];
    return true;
  }

  get size() {
    return this._seqs.length;
  }

  /** @returns {number[]} the shown seqs, ascending (a copy) */
  get seqs() {
    return [...this._seqs];
  }

  has(seq) {
    return this.messages.has(seq);
  }

  get(seq) {
    return this.messages.get(seq);
  }

  /** @returns {ShownMessage | null} the message drawn at `seq` (not a correction), if shown */
  drawn(seq) {
    const entry = this.messages.get(seq);
    return entry && !entry.correction ? entry : null;
  }

  /** @returns {number | null} */
  oldest() {
    return this._seqs.length ? this._seqs[0] : null;
  }

  /** @returns {number | null} */
  newest() {
    return this._seqs.length ? this._seqs[this._seqs.length - 1] : null;
  }

  /** @returns {number | null} the lowest seq above `seq` drawn as a message: where a
   * message goes (corrections have no element to go before) */
  after(seq) {
    for (let i = this._index(seq + 1); i < this._seqs.length; i += 1) {
      if (!this.messages.get(this._seqs[i]).correction) return this._seqs[i];
    }
    return null;
  }

  /** @returns {number | null} the highest shown seq below `seq` */
  below(seq) {
    const i = this._index(seq);
    return i > 0 ? this._seqs[i - 1] : null;
  }

  /** @returns {ShownMessage} a message frame as the page shows it, before any correction */
  shown(msg) {
    const sender = msg.sender || null;
    const entry = {
      seq: msg.seq,
      epoch: msg.epoch,
      ts: msg.ts,
      text: textOf(msg.data),
      senderName: sender ? sender.name : null,
      senderId: sender ? sender.id : null,
      mine: Boolean(this.me && sender && sender.id === this.me.id),
    };
    if (!(msg.data && typeof msg.data.text === "string")) entry.raw = true;
    return entry;
  }

  /**
   * Take a message of the current epoch, once per seq: a message to draw, or a
   * correction, folded into its target when that is shown and kept for it otherwise.
   * @param {import("../realtime/client.js").Message} msg
   * @returns {ShownMessage | CorrectionEntry | null} the new entry (a correction's has
   *   `correction`: redraw `drawn(correction.target)`); null when its seq is known already
   */
  add(msg) {
    if (this.messages.has(msg.seq)) return null;
    const correction = correctionOf(msg.data);
    if (!correction) return this._insert(this._fold(this.shown(msg)));
    const entry = this._insert({ seq: msg.seq, epoch: msg.epoch, ts: msg.ts, correction });
    this.corrections.note(msg.seq, correction);
    const target = this.drawn(correction.target);
    if (target) this._fold(target);
    return entry;
  }

  /** Make `message` say what the corrections known of it say. @returns {ShownMessage} */
  _fold(message) {
    const corrected = message.raw ? null : this.corrections.of(message.seq);
    if (!corrected) return message;
    if (corrected.deleted) {
      message.deleted = true;
      message.text = "";
      delete message.edited;
    } else if (corrected.text !== null) {
      message.edited = true;
      message.text = corrected.text;
    }
    return message;
  }

  /**
   * What the server says of a message already shown (our own, placed when its `ack`
   * came): its time and its sender's name.
   * @returns {ShownMessage | null} null for a seq not drawn (unknown, or a correction)
   */
  update(msg) {
    const known = this.drawn(msg.seq);
    if (!known) return null;
    known.ts = msg.ts;
    if (msg.sender) known.senderName = msg.sender.name;
    return known;
  }

  /**
   * The messages of a page over HTTP that are new here: of the current epoch, with a seq,
   * not shown yet, ascending. They are not added: the caller adds each as it draws it.
   * @param {object[]} messages
   * @returns {object[]}
   */
  fresh(messages) {
    const seen = new Set();
    return messages
      .filter((msg) => msg && msg.epoch === this.epoch && Number.isInteger(msg.seq) && !this.messages.has(msg.seq))
      .filter((msg) => !seen.has(msg.seq) && seen.add(msg.seq))
      .sort((a, b) => a.seq - b.seq);
  }

  /**
   * Forget the shown messages below `seq`.
   * @returns {number[]} the seqs forgotten
   */
  dropBelow(seq) {
    const i = this._index(seq);
    const dropped = this._seqs.slice(0, i);
    this._seqs = this._seqs.slice(i);
    for (const old of dropped) this.messages.delete(old);
    return dropped;
  }

  // --- holes -------------------------------------------------------------------------

  /** @returns {Hole | null} the hole just below the seq `above` (shown or not) */
  holeBelow(above) {
    const below = this.below(above);
    return below !== null && above > below + 1 ? { above, below } : null;
  }

  /** @returns {Hole[]} every hole between two shown messages, the highest first */
  holes() {
    const holes = [];
    for (let i = this._seqs.length - 1; i > 0; i -= 1) {
      const hole = { above: this._seqs[i], below: this._seqs[i - 1] };
      if (holeSize(hole) > 0) holes.push(hole);
    }
    return holes;
  }

  // --- own publishes -----------------------------------------------------------------

  /** @returns {PendingPublish} a message the person just wrote, waiting for its `ack` */
  addPending(text, ts = Date.now()) {
    const entry = { key: this._nextKey++, text, ts, state: "pending", error: null };
    this.pending.set(entry.key, entry);
    return entry;
  }

  /**
   * The `ack` of a pending publish came (after `setEpoch(ack.epoch)`).
   * @param {number} key
   * @param {{seq: number, epoch: string}} ack
   * @returns {ShownMessage | null} the message now confirmed at its seq; null when the
   *   message frame came first and that seq is shown already
   */
  confirm(key, ack) {
    const entry = this.pending.get(key);
    if (!entry) return null;
    this.pending.delete(key);
    if (this.messages.has(ack.seq)) return null;
    return this._insert(this._fold({
      seq: ack.seq,
      epoch: ack.epoch,
      ts: entry.ts,
      text: entry.text,
      senderName: this.me ? this.me.name : null,
      senderId: this.me ? this.me.id : null,
      mine: true,
    }));
  }

  /** The publish was refused: it stays shown, marked failed. @returns {PendingPublish | null} */
  fail(key, error) {
    const entry = this.pending.get(key);
    if (!entry) return null;
    entry.state = "failed";
    entry.error = error;
    return entry;
  }

  // --- the sorted seqs ---------------------------------------------------------------

  _insert(entry) {
    this.messages.set(entry.seq, entry);
    const n = this._seqs.length;
    // Live messages are nearly always the newest: no search for them.
    if (n === 0 || this._seqs[n - 1] < entry.seq) this._seqs.push(entry.seq);
    else this._seqs.splice(this._index(entry.seq), 0, entry.seq);
    return entry;
  }

  /** @returns {number} the index of the first shown seq at or above `seq` */
  _index(seq) {
    let lo = 0;
    let hi = this._seqs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this._seqs[mid] < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
