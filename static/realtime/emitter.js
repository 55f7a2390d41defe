/**
 * A tiny event emitter: `on()` returns the function that unsubscribes (the nanoevents
 * shape), so callers never need to keep a reference to the handler.
 * @module realtime/emitter
 */

export class Emitter {
  constructor() {
    /** @type {Map<string, Set<Function>>} */
    this._handlers = new Map();
  }

  /**
   * Listen to `event`.
   * @param {string} event
   * @param {(payload: any) => void} handler
   * @returns {() => void} call it to stop listening
   */
  on(event, handler) {
    let set = this._handlers.get(event);
    if (!set) {
      set = new Set();
      this._handlers.set(event, set);
    }
    // Wrap so that the same function registered twice is two listeners, like nanoevents.
    const entry = (payload) => handler(payload);
    set.add(entry);
    return () => {
      set.delete(entry);
    };
  }

  /**
   * Call every handler of `event`. A throwing handler is reported and does not stop the
   * others: one broken widget on a page must not cut the feed for the rest.
   * @param {string} event
   * @param {any} [payload]
   */
  emit(event, payload) {
    const set = this._handlers.get(event);
    if (!set) return;
    for (const handler of [...set]) {
      try {
        handler(payload);
      } catch (err) {
        setTimeout(() => {
          throw err;
        });
      }
    }
  }
}
