/**
 * What follows a person's name in the "who is here" list (chat/presence.js): a "Message"
 * link to a direct conversation with them, and for moderators Mute / Ban buttons calling
 * `PUT`/`DELETE /api/streams/{stream}/mutes|bans/{id}` (chat/api.js). Whether someone is
 * muted or banned is not known at load, so the labels only follow what this page did; they
 * are kept here by user id because the list is drawn anew on every presence change.
 *
 * The labels are drawn by the stylesheet from `data-label` (and named by `aria-label`), not
 * put in the text: an item's text stays the person's name alone, which is what the list
 * says (and what its readers and tests read).
 * @module chat/person-actions
 */

/** @returns {string} the page of a direct conversation with user `id` */
export function dmUrl(id) {
  return `/dm/${encodeURIComponent(id)}/`;
}

/** The two toggles a moderator gets, each with its labels off and on. */
const TOGGLES = [
  { key: "muted", className: "mute", off: "Mute", on: "Unmute", call: "setMuted" },
  { key: "banned", className: "ban", off: "Ban", on: "Unban", call: "setBanned" },
];

function label(el, text, title) {
  el.dataset.label = text;
  el.setAttribute("aria-label", text);
  el.title = title;
}

export class PersonActions {
  /**
   * @param {object} options
   * @param {string} options.stream the page's stream
   * @param {{id: string} | null} options.me nobody is offered a message to themselves; guests get nothing
   * @param {boolean} options.moderator
   * @param {import("./api.js").ChatApi} options.api
   * @param {(text: string) => void} options.onError a refused call, said on the page
   */
  constructor({ stream, me, moderator, api, onError }) {
    this.stream = stream;
    this.me = me;
    this.moderator = moderator;
    this.api = api;
    this.onError = onError;
    /** @type {Map<string, {muted: boolean, banned: boolean}>} what this page set, by user id */
    this.state = new Map();
  }

  /** @returns {Node[]} the elements after the name of user `id` */
  elementsFor(id, name) {
    if (!this.me || id === this.me.id) return [];
    const link = document.createElement("a");
    link.className = "person-action message-person";
    link.href = dmUrl(id);
    label(link, "Message", `Message ${name}`);
    const elements = [link];
    if (this.moderator) {
      for (const toggle of TOGGLES) elements.push(this._button(id, name, toggle));
    }
    return elements;
  }

  _button(id, name, toggle) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = `person-action ${toggle.className}`;
    const show = () => {
      const on = this._state(id)[toggle.key];
      const text = on ? toggle.on : toggle.off;
      label(button, text, `${text} ${name}`);
    };
    show();
    button.addEventListener("click", async () => {
      const state = this._state(id);
      const want = !state[toggle.key];
      button.disabled = true;
      try {
        await this.api[toggle.call](this.stream, id, want);
        state[toggle.key] = want;
      } catch (err) {
        this.onError(`${want ? toggle.off : toggle.on} ${name} failed: ${err.code || err.message}`);
      } finally {
        button.disabled = false;
        show();
      }
    });
    return button;
  }

  _state(id) {
    let state = this.state.get(id);
    if (!state) {
      state = { muted: false, banned: false };
      this.state.set(id, state);
    }
    return state;
  }
}
