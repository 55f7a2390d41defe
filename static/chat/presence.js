/**
 * Who is here and who is typing in a room, from the `presence` and `typing` frames of
 * docs/protocol-extensions.md. Both are hints delivered at most once: the list is
 * re-asked after every (re)subscribe and shortly after each join or leave, so a lost
 * event is corrected within a second. Names only ever go through `textContent`.
 * @module chat/presence
 */

/** How long a typing signal shows without another one (ms). */
export const TYPING_SHOWN_FOR = 4000;
/** The least time between two typing signals this page sends (ms); the server takes ~2/s. */
export const TYPING_SEND_EVERY = 2000;
/** Wait after a join or leave before asking for the whole list again (ms). */
const REFRESH_AFTER_EVENT = 800;

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
    this._refreshTimer = null;
    client.on("presence", (frame) => frame.stream === stream && this._onFrame(frame));
  }

  /** Ask the server for the whole list (after subscribing, and to correct the counts). */
  refresh() {
    clearTimeout(this._refreshTimer);
    this._refreshTimer = null;
    this.client.send({ type: "presence", stream: this.stream });
  }

  _onFrame(frame) {
    if (Array.isArray(frame.members)) {
      this.users = new Map(frame.members.map((m) => [m.id, { name: m.name, connections: m.connections }]));
    } else if (frame.user && (frame.event === "join" || frame.event === "leave")) {
      const user = this.users.get(frame.user.id) || { name: frame.user.name, connections: 0 };
      user.connections = Math.max(0, user.connections + (frame.event === "join" ? 1 : -1));
      this.users.set(frame.user.id, user);
      // Our own join can cross the list that already counts it: the list settles it.
      clearTimeout(this._refreshTimer);
      this._refreshTimer = setTimeout(() => this.refresh(), REFRESH_AFTER_EVENT);
    }
    this._show();
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
