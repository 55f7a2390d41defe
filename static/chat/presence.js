/**
 * Who is here and who is typing in a room, from the `presence` and `typing` frames of
 * docs/protocol-extensions.md. The list is asked for once per (re)subscribe, then kept by
 * applying each `join` and `leave`: each query reads the whole room, so a page that asked
 * after every event would make one reconnect cost N queries of size N. It asks again only
 * when the events do not add up, after a random wait so that readers who notice the same
 * thing do not all ask at once, and twice as long each time answers keep being crossed by
 * events (a busy room would otherwise have every reader ask every few seconds). Names only
 * ever go through `textContent`.
 * @module chat/presence
 */

/** How long a typing signal shows without another one (ms). */
export const TYPING_SHOWN_FOR = 4000;
/** The least time between two typing signals this page sends (ms); the server takes ~2/s. */
export const TYPING_SEND_EVERY = 2000;
/** Asking again waits this long plus a random part of REQUERY_SPREAD (ms). */
export const REQUERY_LEAST = 1000;
export const REQUERY_SPREAD = 3000;
/** Events this soon after a list may have crossed it: the list may count them already (ms). */
const CROSSING = 1000;
/** Asking again because events did not add up waits up to this long (ms). */
export const REQUERY_LONGEST = 60000;
/** An answer that has not come after this long is taken as lost (ms). */
const ANSWER_LOST = 10000;

/** The "who is here" list: connections per user id, shown for those above zero. */
export class PresenceList {
  /**
   * @param {{client: any, stream: string, list: HTMLElement, count: HTMLElement, me: {id: string} | null}} options
   */
  constructor({ client, stream, list, count, me }) {
    this.client = client;
    this.stream = stream;
    this.list = list;
    this.count = count;
    this.me = me;
    /** @type {Map<string, {name: string, connections: number}>} */
    this.users = new Map();
    /** Queries this page has sent, for people debugging it from the console. */
    this.queries = 0;
    this._askTimer = null;
    this._lostTimer = null;
    /** A query is out and its answer has not come: events now may or may not be in it. */
    this._asking = false;
    /** An event came while asking: the answer may have missed it. */
    this._crossed = false;
    /** Until then, an event may already be counted in the last list. */
    this._crossingUntil = 0;
    /** The join of this page's own connection is on its way (after a subscribe). */
    this._ownJoinDue = false;
    /** Asked again this many times in a row for events that did not add up: the next wait
     * doubles with it, until an answer that nothing crossed. */
    this._doubts = 0;
    this._settleTimer = null;
    client.on("presence", (frame) => frame.stream === stream && this._onFrame(frame));
    client.on("disconnected", () => this._answered());
    client.on("error", (err) => {
      // A query refused (rate_limited, unavailable): ask again after what the server says.
      if (!err.frame || err.frame.stream !== stream || !this._asking) return;
      this._answered();
      this._askLater((err.frame.retry_after || 0) * 1000);
    });
  }

  /** After every (re)subscribe: the first asks at once, a later one after a random wait (a
   * server restart resubscribes every reader of the room together). Events were missed
   * meanwhile, so the list is asked for either way. */
  subscribed({ first }) {
    this._ownJoinDue = Boolean(this.me);
    if (first) this.refresh();
    else this._askLater();
  }

  /** Ask the server for the whole list now. */
  refresh() {
    clearTimeout(this._askTimer);
    this._askTimer = null;
    if (!this.client.send({ type: "presence", stream: this.stream })) return; // the next subscribe asks
    this.queries += 1;
    this._asking = true;
    this._crossed = false;
    clearTimeout(this._lostTimer);
    this._lostTimer = setTimeout(() => {
      this._answered();
      this._askLater();
    }, ANSWER_LOST);
  }

  /** Ask again after REQUERY_LEAST plus a random part of REQUERY_SPREAD (or `least`). */
  _askLater(least = REQUERY_LEAST) {
    if (this._askTimer !== null || this._asking) return;
    const wait = Math.max(least, REQUERY_LEAST) + Math.random() * REQUERY_SPREAD;
    this._askTimer = setTimeout(() => this.refresh(), wait);
  }

  /** The events did not add up: ask again, waiting longer the more often in a row. */
  _doubt() {
    clearTimeout(this._settleTimer);
    this._settleTimer = null;
    if (this._askTimer !== null || this._asking) return;
    this._askLater(Math.min(REQUERY_LONGEST, REQUERY_LEAST * 2 ** this._doubts));
    this._doubts += 1;
  }

  _answered() {
    this._asking = false;
    clearTimeout(this._lostTimer);
    this._lostTimer = null;
  }

  _onFrame(frame) {
    if (Array.isArray(frame.members)) this._onList(frame.members);
    else if (frame.user && typeof frame.user.id === "string" && (frame.event === "join" || frame.event === "leave")) {
      this._onEvent(frame.event, frame.user);
    } else return; // not a presence frame this page knows: the list stays as it is
    this._show();
  }

  _onList(members) {
    const crossed = this._crossed;
    this._answered();
    this.users = new Map(
      members
        .filter((m) => m && typeof m.id === "string" && Number.isInteger(m.connections))
        .map((m) => [m.id, { name: String(m.name), connections: m.connections }]),
    );
    this._crossingUntil = performance.now() + CROSSING;
    clearTimeout(this._settleTimer);
    this._settleTimer = null;
    if (crossed) this._doubt(); // an event crossed this answer: it may not count it
    else {
      // Nothing crossed it, if nothing comes in the next moment either: the waits start over.
      this._settleTimer = setTimeout(() => {
        this._settleTimer = null;
        this._doubts = 0;
      }, CROSSING);
    }
  }

  _onEvent(event, user) {
    const known = this.users.get(user.id);
    const own = this.me && user.id === this.me.id;
    if (event === "join" && own && this._ownJoinDue) {
      this._ownJoinDue = false;
      // Our own connection's join, which the list asked after subscribing counts (it is
      // asked, on its way, or just came). Much later it is another tab of ours.
      if (this._asking || this._askTimer !== null || performance.now() < this._crossingUntil) return;
    }
    if (this._asking) this._crossed = true;
    else if (performance.now() < this._crossingUntil) this._doubt();
    else if (event === "leave" && !(known && known.connections > 0)) this._doubt(); // missed a join
    else if (event === "join" && known && known.connections > 0 && known.name !== user.name) this._doubt();
    const entry = known || { name: user.name, connections: 0 };
    entry.connections = Math.max(0, entry.connections + (event === "join" ? 1 : -1));
    entry.name = user.name;
    this.users.set(user.id, entry);
  }

  _show() {
    const here = [...this.users.entries()]
      .filter(([, user]) => user.connections > 0)
      .sort(([, a], [, b]) => a.name.localeCompare(b.name));
    const items = here.map(([id, user]) => {
      const li = document.createElement("li");
      li.className = "who-item" + (this.me && id === this.me.id ? " me" : "");
      li.dataset.userId = id;
      li.textContent = user.name;
      li.title = this.me && id === this.me.id ? "you" : user.name;
      return li;
    });
    this.list.replaceChildren(...items);
    this.count.textContent = here.length === 1 ? "1 here" : `${here.length} here`;
  }
}

/** "alice is typing…": shown per person for a few seconds, gone when their message comes. */
export class TypingIndicator {
  /** @param {{client: any, stream: string, element: HTMLElement, me: {id: string} | null}} options */
  constructor({ client, stream, element, me }) {
    this.element = element;
    this.me = me;
    /** @type {Map<string, {name: string, timer: any}>} */
    this.typing = new Map();
    client.on("typing", (frame) => frame.stream === stream && frame.user && this._onTyping(frame.user));
  }

  _onTyping(user) {
    if (this.me && user.id === this.me.id) return; // our own signal comes back to us too
    const known = this.typing.get(user.id);
    if (known) clearTimeout(known.timer);
    const timer = setTimeout(() => this.stopped(user.id), TYPING_SHOWN_FOR);
    this.typing.set(user.id, { name: user.name, timer });
    this._show();
  }

  /** That person is no longer typing: their message arrived, or the signal ran out. */
  stopped(userId) {
    const known = this.typing.get(userId);
    if (!known) return;
    clearTimeout(known.timer);
    this.typing.delete(userId);
    this._show();
  }

  _show() {
    const names = [...this.typing.values()].map((t) => t.name).sort();
    let text = "";
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length > 2) text = "Several people are typing…";
    this.element.textContent = text;
    this.element.hidden = !text;
  }
}

/**
 * Send `typing` while the person writes in `input`, at most once per TYPING_SEND_EVERY.
 * @param {{client: any, stream: string, input: HTMLInputElement}} options
 * @returns {() => void} call when the message is sent, so the next keystroke signals again
 */
export function signalTyping({ client, stream, input }) {
  let lastSent = -Infinity;
  input.addEventListener("input", () => {
    const now = performance.now();
    if (!input.value.trim() || now - lastSent < TYPING_SEND_EVERY) return;
    if (client.send({ type: "typing", stream })) lastSent = now;
  });
  return () => {
    lastSent = -Infinity;
  };
}
