/**
 * The room page's DOM: the message list, the status, the notice, the "load older" button
 * and the beginning mark. It draws what the model holds (chat/model.js) and holds no
 * state of its own beyond the element of each shown seq. What people write is data, never
 * markup: every piece of it goes through `textContent` (chat/message-element.js draws
 * one message). Each confirmed message's `<li>` carries `data-seq`.
 * @module chat/view
 */

import { State } from "../realtime/client.js";
import { drawMessage, setTime } from "./message-element.js";

const STATUS_TEXT = {
  [State.CONNECTED]: "live",
  [State.CONNECTING]: "connecting…",
  [State.DISCONNECTED]: "offline",
};

/** Within this many px of the bottom, a new message keeps the page scrolled to it. */
const STICK_TO_BOTTOM = 80;

/** @returns {string} "1 message", "3 messages" */
export function counted(count, what = "message") {
  return `${count} ${what}${count === 1 ? "" : "s"}`;
}

/**
 * @typedef {object} Gap a mark where messages are missing, before the shown seq `before`
 * @property {"older" | "hole" | "wide"} kind above the oldest shown; a small hole
 *   (asked for by itself); a hole too wide for that, loaded by its button
 * @property {number} before
 * @property {number} missing how many seqs
 * @property {boolean} [retrying] asked for again later (else: not available)
 * @property {import("./model.js").Hole} [hole]
 */

export class RoomView {
  /**
   * @param {object} elements
   * @param {HTMLElement} elements.list `#messages`
   * @param {HTMLElement} elements.status
   * @param {HTMLElement} elements.notice
   * @param {HTMLButtonElement} elements.olderButton
   * @param {HTMLElement} elements.beginning
   * @param {(hole: import("./model.js").Hole) => void} elements.onLoadGap the "Load more" of a wide hole
   * @param {object} [reader]
   * @param {string | null} [reader.myName] whose `@mentions` mark a message `.mentions-me`
   * @param {(message: import("./model.js").ShownMessage) => {edit: boolean, delete: boolean}} [reader.rightsOf]
   *   which buttons a confirmed message gets (none by default)
   */
  constructor({ list, status, notice, olderButton, beginning, onLoadGap }, { myName = null, rightsOf = null } = {}) {
    this.myName = myName;
    this.rightsOf = rightsOf;
    /** Set once the page may only read (access lost): no buttons, the notice stays. */
    this.readOnly = false;
    this.list = list;
    this.status = status;
    this.notice = notice;
    this.olderButton = olderButton;
    this.beginning = beginning;
    this.onLoadGap = onLoadGap;
    /** @type {Map<number, HTMLLIElement>} the element of each shown seq */
    this.elements = new Map();
    /** @type {Map<number, HTMLLIElement>} own messages not confirmed, by the model's key */
    this.pendingElements = new Map();
    // The page keeps the reader's place itself, so the browser's own scroll anchoring must not add to it.
    document.documentElement.style.overflowAnchor = "none";
  }

  showStatus(state) {
    this.status.dataset.state = state;
    this.status.textContent = STATUS_TEXT[state] || state;
  }

  showNotice(text) {
    if (this.readOnly) return; // the access notice says what matters now
    this.notice.textContent = text;
    this.notice.hidden = !text;
  }

  /** Nothing more can be written here: say why, for good, and take the buttons away. */
  lockReadOnly(text) {
    this.showNotice(text);
    this.readOnly = true;
    for (const actions of this.list.querySelectorAll("li.message .actions, li.message form.edit-form")) actions.remove();
    for (const shown of this.list.querySelectorAll("li.message .text[hidden]")) shown.hidden = false;
  }

  /** "Beginning of the room" instead of the button, or the button again. */
  showBeginning(reached) {
    this.beginning.hidden = !reached;
    this.olderButton.hidden = reached;
  }

  setOlderLoading(loading) {
    this.olderButton.disabled = loading;
    this.olderButton.textContent = loading ? "Loading…" : "Load older messages";
  }

  // --- messages ------------------------------------------------------------------------

  /**
   * Draw a confirmed message at its place: before the shown seq `next`, or after every
   * confirmed one (own messages waiting for their `ack` stay last).
   * @param {import("./model.js").ShownMessage} message
   * @param {number | null} next
   */
  place(message, next) {
    const li = this._draw(document.createElement("li"), message);
    li.dataset.seq = String(message.seq);
    li.id = `m${message.seq}`; // what a notification's link (`#m<seq>`) opens at
    this.elements.set(message.seq, li);
    this._insert(li, next);
  }

  /** Draw a shown message again in place: an edit or a deletion was folded into it. */
  redraw(message) {
    const li = this.elements.get(message.seq);
    if (li) this._draw(li, message);
  }

  /** @returns {HTMLLIElement} li, drawn as `message`, with the buttons of a confirmed one */
  _draw(li, message, { confirmed = true } = {}) {
    const rights = confirmed && this.rightsOf && !this.readOnly ? this.rightsOf(message) : null;
    return drawMessage(li, message, { myName: this.myName, rights });
  }

  /** Fill in what the server says of a shown message: its time, its sender's name. */
  update(message) {
    const li = this.elements.get(message.seq);
    if (!li) return;
    setTime(li, message.ts);
    const sender = li.querySelector(".sender");
    if (sender && message.senderName !== null) sender.textContent = message.senderName;
  }

  /** Take the elements of `seqs` away. */
  remove(seqs) {
    for (const seq of seqs) {
      const li = this.elements.get(seq);
      if (li) li.remove();
      this.elements.delete(seq);
    }
  }

  /** Take every shown message and gap mark away (own messages not confirmed stay). */
  clear() {
    this.remove([...this.elements.keys()]);
    this.clearGaps();
  }

  /** @returns {boolean} whether a gap mark is right above or below the shown `seq` */
  nextToGap(seq) {
    const li = this.elements.get(seq);
    if (!li) return false;
    return [li.previousElementSibling, li.nextElementSibling].some((el) => el && el.classList.contains("gap"));
  }

  // --- own messages ----------------------------------------------------------------------

  /** @param {import("./model.js").PendingPublish} entry @param {string} senderName */
  addPending(entry, senderName) {
    const li = this._draw(document.createElement("li"), { text: entry.text, senderName, ts: entry.ts, mine: true }, { confirmed: false });
    li.classList.add("pending");
    li.title = "sending…";
    this.pendingElements.set(entry.key, li);
    this.list.append(li);
  }

  /**
   * Its `ack` came: no longer pending. With `message`, it becomes that confirmed seq, at
   * its place before `next`; without (the message frame came first and is shown), it goes.
   */
  confirmPending(key, message, next) {
    const li = this.pendingElements.get(key);
    if (!li) return;
    this.pendingElements.delete(key);
    li.classList.remove("pending");
    li.removeAttribute("title");
    if (!message) {
      li.remove();
      return;
    }
    li.dataset.seq = String(message.seq);
    li.id = `m${message.seq}`;
    this._draw(li, message); // its buttons, now that it has a seq
    this.elements.set(message.seq, li);
    this._insert(li, next);
  }

  /** Refused: marked failed, with the reason. */
  failPending(key, title, reason) {
    const li = this.pendingElements.get(key);
    if (!li) return;
    li.classList.remove("pending");
    li.classList.add("failed");
    li.title = title;
    const why = document.createElement("div");
    why.className = "why";
    why.textContent = reason;
    li.append(why);
  }

  // --- gaps --------------------------------------------------------------------------------

  clearGaps() {
    for (const gap of this.list.querySelectorAll("li.gap")) gap.remove();
  }

  /** Mark where messages are missing, in place of the marks drawn before. @param {Gap[]} gaps */
  drawGaps(gaps) {
    this.clearGaps();
    for (const gap of gaps) {
      const li = this.elements.get(gap.before);
      if (li) this.list.insertBefore(this._gapElement(gap), li);
    }
  }

  _gapElement(gap) {
    let text;
    if (gap.kind === "wide") text = `${counted(gap.missing)} not loaded `;
    else if (gap.kind === "older") {
      text = gap.retrying ? `${counted(gap.missing, "older message")} not available yet — retrying` : "Older messages are not available";
    } else {
      text = gap.retrying
        ? `${counted(gap.missing)} not available yet — retrying`
        : `${counted(gap.missing)} ${gap.missing === 1 ? "is" : "are"} not available`;
    }
    const li = document.createElement("li");
    li.className = "gap" + (gap.kind !== "wide" && gap.retrying ? " retrying" : "");
    li.textContent = text;
    if (gap.kind === "wide") {
      // A hole too wide to fill by itself: one page of it (the newest) when the reader asks.
      const button = document.createElement("button");
      button.type = "button";
      button.className = "load-gap";
      button.textContent = "Load more";
      const hole = gap.hole;
      button.addEventListener("click", () => this.onLoadGap(hole));
      li.append(button);
    }
    return li;
  }

  // --- scrolling ---------------------------------------------------------------------------

  nearBottom() {
    return window.innerHeight + window.scrollY >= document.body.scrollHeight - STICK_TO_BOTTOM;
  }

  scrollToBottom() {
    window.scrollTo(0, document.body.scrollHeight);
  }

  /** Change the page so that the first message on screen stays where it is: what goes in
   * above it pushes the rest down by exactly its height. */
  keepingPlace(change) {
    let anchor = null;
    for (const li of this.list.querySelectorAll("li[data-seq]")) {
      if (li.getBoundingClientRect().bottom > 0) {
        anchor = li;
        break;
      }
    }
    const topBefore = anchor ? anchor.getBoundingClientRect().top : 0;
    change();
    if (anchor && anchor.isConnected) window.scrollBy(0, anchor.getBoundingClientRect().top - topBefore);
  }

  /** Before the element of `next`, else where confirmed messages end: before the first
   * own message that is pending or failed. */
  _insert(li, next) {
    const before = next !== null ? this.elements.get(next) : undefined;
    this.list.insertBefore(li, before || this.list.querySelector("li.pending, li.failed"));
  }
}
