/**
 * Edits and deletions (docs/protocol.md, "Edits and deletions"), folded over what a page
 * shows. They are messages with a seq of their own, `{"edit": SEQ, "text": T}` and
 * `{"delete": SEQ}`, never shown by themselves: the log only grows, and the page keeps,
 * for each target seq, the newest edit (by the correction's own seq) and whether it was
 * withdrawn. A correction may be loaded before its target (a live edit of a message of an
 * older page not loaded yet, an older page holding the edit but not the message): it is
 * kept here and applied when the target comes, so the result is the same in any order.
 * No DOM.
 * @module chat/corrections
 */

/**
 * @typedef {{kind: "edit", target: number, text: string} | {kind: "delete", target: number}} Correction
 */

/**
 * @typedef {object} Corrected what the corrections known so far make of one target
 * @property {boolean} deleted withdrawn: no text, whatever the edits said
 * @property {string | null} text the newest edit's text, or null (never edited)
 */

/**
 * @param {any} data a message's data
 * @returns {Correction | null} the correction it carries, or null for anything else (a chat
 *   message, a backend's JSON): those are shown as messages
 */
export function correctionOf(data) {
  if (!data || typeof data !== "object" || Array.isArray(data)) return null;
  if (isSeq(data.delete)) return { kind: "delete", target: data.delete };
  if (isSeq(data.edit) && typeof data.text === "string") return { kind: "edit", target: data.edit, text: data.text };
  return null;
}

function isSeq(value) {
  return Number.isInteger(value) && value >= 1;
}

/** The corrections of one epoch, by target seq. */
export class Corrections {
  constructor() {
    /** @type {Map<number, {editSeq: number, text: string | null, deleted: boolean}>} */
    this.byTarget = new Map();
  }

  /**
   * Take the correction of seq `seq` into account, whatever came before it.
   * @param {number} seq the correction's own seq
   * @param {Correction} correction
   * @returns {boolean} whether what its target shows changed
   */
  note(seq, correction) {
    // The server takes only corrections of earlier messages; anything else is no correction.
    if (!(correction.target < seq)) return false;
    const known = this.byTarget.get(correction.target) || { editSeq: 0, text: null, deleted: false };
    this.byTarget.set(correction.target, known);
    if (correction.kind === "delete") {
      const changed = !known.deleted;
      known.deleted = true;
      return changed;
    }
    // The newest edit wins, by seq, not by arrival: an older page may bring an older edit late.
    if (seq <= known.editSeq) return false;
    known.editSeq = seq;
    known.text = correction.text;
    return !known.deleted;
  }

  /** @returns {Corrected | null} null: no correction of `target` is known */
  of(target) {
    const known = this.byTarget.get(target);
    return known ? { deleted: known.deleted, text: known.text } : null;
  }

  get size() {
    return this.byTarget.size;
  }

  /** A new epoch: its seqs name other messages. */
  clear() {
    this.byTarget.clear();
  }
}

/**
 * What the person reading may do to a shown message. The server decides (only the sender,
 * or a moderator, may correct; only chat messages can be): the buttons just do not offer
 * what it would refuse.
 * @param {import("./model.js").ShownMessage} message
 * @param {{moderator?: boolean}} [who]
 * @returns {{edit: boolean, delete: boolean}}
 */
export function rightsOf(message, { moderator = false } = {}) {
  if (message.deleted || message.raw) return { edit: false, delete: false };
  return { edit: message.mine, delete: message.mine || moderator };
}
