/**
 * Who is here and who is typing in a room, from the `presence`, `occupancy` and `typing`
 * frames of docs/protocol.md ("Presence", "Occupancy"). The list is asked for once per
 * (re)subscribe; after that the server's change frames (`joined`, `left`, at most one per
 * second and process) keep it, each change applied only when its version `v` is newer
 * than what the page has for that person (the processes send independently). A room past
 * the server's member cap sends no changes: the page then shows the count from the
 * `occupancy` frames ("1,234 here") instead of a list. Names only ever go through
 * `textContent`.
 * @module chat/presence
 */

/** How long a typing signal shows without another one (ms). */
export const TYPING_SHOWN_FOR = 4000;
/** The least time between two typing signals this page sends (ms); the server takes ~2/s. */
export const TYPING_SEND_EVERY = 2000;
/** Asking again waits this long plus a random part of REQUERY_SPREAD (ms). */
export const REQUERY_LEAST = 1000;
export const REQUERY_SPREAD = 3000;
/** An answer that has not come after this long is taken as lost (ms). */
const ANSWER_LOST = 10000;

/** The "who is here" list: who is present, with the version of what the page knows. */
export class PresenceList {
  /**
   * @param {{client: any, stream: string, list: HTMLElement, count: HTMLElement, me: {id: string} | null,
   *   actions?: (id: string, name: string) => Node[]}} options `actions`: what follows a
   *   person's name (chat/person-actions.js); without, the item is the name alone
   */
  constructor({ client, stream, list, count, me, actions = null }) {
    this.actions = actions;
    /** Set by stop(): the page lost this stream, nothing is asked any more. */
    this.stopped = false;
    this.client = client;
    this.stream = stream;
    this.list = list;
    this.count = count;
    this.me = me;
    /** @type {Map<string, {name: string, here: boolean, v: number}>} */
    this.users = new Map();
    /** The version of the last list: changes at or below it are in it. */
    this.listVersion = 0;
    /** How many are here in all (the server's `total`, or occupancy's `users`). */
    this.total = 0;
    /** True while the room is past the server's member cap: a count, not a list. */
    this.big = false;
    /** Queries this page has sent, for people debugging it from the console. */
    this.queries = 0;
    this._askTimer = null;
    this._lostTimer = null;
    this._asking = false;
    client.on("presence", (frame) => frame.stream === stream && this._onFrame(frame));
    client.on("occupancy", (frame) => frame.stream === stream && this._onOccupancy(frame));
    client.on("disconnected", () => this._answered());
    client.on("error", (err) => {
      // A query refused (rate_limited, unavailable): ask again after what the server says.
      if (!err.frame || err.frame.stream !== stream || !this._asking) return;
      this._answered();
      this._askLater((err.frame.retry_after || 0) * 1000);
    });
  }

  /** After every (re)subscribe: the first asks at once, a later one after a random wait (a
   * server restart resubscribes every reader of the room together). Changes were missed
   * meanwhile, so the list is asked for either way. */
  subscribed({ first }) {
    if (first) this.refresh();
    else this._askLater();
  }

  /** Ask the server for the list now. */
  refresh() {
    clearTimeout(this._askTimer);
    this._askTimer = null;
    if (this.stopped) return;
    if (!this.client.send({ type: "presence", stream: this.stream })) return; // the next subscribe asks
    this.queries += 1;
    this._asking = true;
    clearTimeout(this._lostTimer);
    this._lostTimer = setTimeout(() => {
      this._answered();
      this._askLater();
    }, ANSWER_LOST);
  }

  /** No access to the stream any more: stop asking (the server would refuse each query)
   * and show no one. */
  stop() {
    this.stopped = true;
    this._answered();
    clearTimeout(this._askTimer);
    this._askTimer = null;
    this.users = new Map();
    this.big = false;
    this._show();
  }

  /** Ask again after REQUERY_LEAST plus a random part of REQUERY_SPREAD (or `least`). */
  _askLater(least = REQUERY_LEAST) {
    if (this._askTimer !== null || this._asking || this.stopped) return;
    const wait = Math.max(least, REQUERY_LEAST) + Math.random() * REQUERY_SPREAD;
    this._askTimer = setTimeout(() => this.refresh(), wait);
  }

  _answered() {
    this._asking = false;
    clearTimeout(this._lostTimer);
    this._lostTimer = null;
  }

  _onFrame(frame) {
    if (this.stopped) return;
    if (Array.isArray(frame.members)) this._onList(frame);
    else if (Array.isArray(frame.joined) || Array.isArray(frame.left)) this._onChanges(frame);
    else return; // not a presence frame this page knows: the list stays as it is
    this._show();
  }

  _onList(frame) {
    this._answered();
    this.listVersion = Number.isInteger(frame.v) ? frame.v : 0;
    this.users = new Map(
      frame.members
        .filter((m) => m && typeof m.id === "string")
        .map((m) => [m.id, { name: String(m.name), here: true, v: this.listVersion }]),
    );
    // More than it lists: past the member cap, a count from now on.
    this.total = Number.isInteger(frame.total) ? frame.total : this.users.size;
    this.big = this.total > this.users.size;
  }

  _onChanges(frame) {
    if (this.big) {
      // Changes are sent only under the cap: the room shrank, and the list this page has
      // is the capped one. Ask for it anew.
      this.big = false;
      this._askLater();
    }
    for (const [list, here] of [[frame.joined, true], [frame.left, false]]) {
      for (const user of Array.isArray(list) ? list : []) {
        if (!user || typeof user.id !== "string" || !Number.isInteger(user.v)) continue;
        const known = this.users.get(user.id);
        if (user.v <= Math.max(this.listVersion, known ? known.v : 0)) continue; // already counted
        this.users.set(user.id, { name: String(user.name), here, v: user.v });
      }
    }
  }

  _onOccupancy(frame) {
    if (this.stopped || !this.big || !Number.isInteger(frame.users)) return; // a listed room counts its list
    this.total = Math.max(0, frame.users);
    this._show();
  }

  _show() {
    const here = [...this.users.entries()]
      .filter(([, user]) => user.here)
      .sort(([, a], [, b]) => a.name.localeCompare(b.name));
    const count = this.big ? this.total : here.length;
    this.count.textContent = `${count.toLocaleString("en")} here`;
    this.list.hidden = this.big;
    if (this.big) {
      this.list.replaceChildren();
      return;
    }
    const items = here.map(([id, user]) => {
      const li = document.createElement("li");
      li.className = "who-item" + (this.me && id === this.me.id ? " me" : "");
      li.dataset.userId = id;
      li.title = this.me && id === this.me.id ? "you" : user.name;
      if (!this.actions) {
        li.textContent = user.name;
        return li;
      }
      const name = document.createElement("span");
      name.className = "who-name";
      name.textContent = user.name;
      li.append(name, ...this.actions(id, user.name));
      return li;
    });
    this.list.replaceChildren(...items);
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
