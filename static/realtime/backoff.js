/**
 * Reconnect delays. The default is capped exponential backoff with full jitter (AWS
 * architecture blog, "Exponential Backoff And Jitter"): after a server restart every
 * client would otherwise come back in the same instant.
 * @module realtime/backoff
 */

import { Defaults } from "./constants.js";

/**
 * @callback Backoff
 * @param {number} attempt 1 for the first retry after a failure, 2 for the next, ...
 * @returns {number} milliseconds to wait before that attempt
 */

/**
 * A full-jitter backoff: a random delay in [0, min(cap, base * 2^(attempt-1))).
 * @param {{base?: number, cap?: number, random?: () => number}} [options]
 * @returns {Backoff}
 */
export function fullJitterBackoff({ base = Defaults.BACKOFF_BASE, cap = Defaults.BACKOFF_CAP, random = Math.random } = {}) {
  return (attempt) => {
    const ceiling = Math.min(cap, base * 2 ** Math.max(0, attempt - 1));
    return Math.floor(random() * ceiling);
  };
}
