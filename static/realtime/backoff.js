/**
 * Waits before trying again, for every retry of the browser code: the client's reconnects,
 * the room's "not available yet" ranges, the feed's reloads and the embed's tokens. One
 * shape for all of them: a wait that grows with the attempt (doubling from `base` up to
 * `cap`, or a list of `steps` whose last repeats), times a random factor, so that the
 * readers a server restart dropped together do not all come back in the same instant. The
 * client's default is capped exponential backoff with full jitter (AWS architecture blog,
 * "Exponential Backoff And Jitter").
 * @module realtime/backoff
 */

import { Defaults } from "./constants.js";

/**
 * @callback Backoff
 * @param {number} attempt 1 for the first retry after a failure, 2 for the next, ...
 * @returns {number} milliseconds to wait before that attempt
 */

/**
 * @typedef {object} BackoffOptions
 * @property {number[]} [steps] the waits in ms, attempt 1 first; the last one repeats
 * @property {number} [base] without `steps`: the first wait in ms, doubled for each attempt after
 * @property {number} [cap] the longest wait before the random factor (default: no cap)
 * @property {[number, number]} [jitter] the wait is multiplied by a random factor in
 *   [lo, hi): `[0, 1]` is full jitter, `[0.5, 1]` "half to all of it" (default `[1, 1]`: none)
 * @property {() => number} [random] a number in [0, 1) (default `Math.random`)
 */

/**
 * @param {BackoffOptions} options
 * @returns {Backoff} whole milliseconds
 */
export function backoff({ steps, base, cap = Infinity, jitter = [1, 1], random = Math.random } = {}) {
  if (!steps && !(base >= 0)) throw new Error("backoff needs steps or a base");
  const [lo, hi] = jitter;
  return (attempt) => {
    const n = Math.max(1, Math.floor(attempt) || 1);
    const grown = steps ? steps[Math.min(n, steps.length) - 1] : base * 2 ** (n - 1);
    return Math.floor(Math.min(cap, grown) * (lo + random() * (hi - lo)));
  };
}

/**
 * A full-jitter backoff: a random delay in [0, min(cap, base * 2^(attempt-1))).
 * @param {{base?: number, cap?: number, random?: () => number}} [options]
 * @returns {Backoff}
 */
export function fullJitterBackoff({ base = Defaults.BACKOFF_BASE, cap = Defaults.BACKOFF_CAP, random = Math.random } = {}) {
  return backoff({ base, cap, jitter: [0, 1], random });
}

/**
 * One retry at a time, with growing waits: `later(fn)` calls `fn` after the wait of the
 * next attempt, and returns false instead once `tries` attempts have been made. A `key`
 * names what is retried: a new key starts the count over (the room retries one range at
 * a time). `reset()` cancels the timer and starts over.
 */
export class Retry {
  /**
   * @param {Backoff} wait
   * @param {{tries?: number}} [options] how many attempts at most (default: no limit)
   */
  constructor(wait, { tries = Infinity } = {}) {
    this.wait = wait;
    this.limit = tries;
    /** Attempts made for the current key. */
    this.tries = 0;
    this.key = undefined;
    this.timer = null;
  }

  /**
   * @param {() => void} fn
   * @param {any} [key]
   * @returns {boolean} whether `fn` was scheduled
   */
  later(fn, key) {
    if (key !== this.key) {
      this.key = key;
      this.tries = 0;
    }
    if (this.tries >= this.limit) return false;
    this.tries += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      fn();
    }, this.wait(this.tries));
    return true;
  }

  /** True while a call is scheduled. */
  get waiting() {
    return this.timer !== null;
  }

  reset() {
    clearTimeout(this.timer);
    this.timer = null;
    this.key = undefined;
    this.tries = 0;
  }
}
