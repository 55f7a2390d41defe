/**
 * Reading a score update's `data` (docs/live-scores.md). Publishers are other people's
 * code, so nothing here trusts a type: a field of the wrong type is dropped, an unknown
 * field is ignored, and what is left can be applied on top of what the page shows.
 * @module live/update
 */

/** Longest text kept per field: a runaway string must not wreck the layout. */
const MAX_LENGTH = Object.freeze({ home: 64, away: 64, clock: 16, status: 32, event: 200 });

/**
 * @typedef {object} ScoreUpdate the fields of one update that are present and well-typed
 * @property {string} [home]
 * @property {string} [away]
 * @property {[number, number]} [score] goals of home and away
 * @property {string} [clock] e.g. "67:00" or "90+2:00"
 * @property {string} [status] e.g. "first half", "half time", "full time"
 * @property {string} [event] what just happened, e.g. "Goal! Rovers"
 */

function text(value, max) {
  if (typeof value !== "string") return undefined;
  const trimmed = value.trim();
  return trimmed ? trimmed.slice(0, max) : undefined;
}

function score(value) {
  if (!Array.isArray(value) || value.length !== 2) return undefined;
  if (!value.every((goals) => Number.isSafeInteger(goals) && goals >= 0)) return undefined;
  return [value[0], value[1]];
}

/**
 * @param {unknown} data a message's `data`, as published
 * @returns {ScoreUpdate} only the usable fields (empty for anything that is not an object)
 */
export function readUpdate(data) {
  /** @type {ScoreUpdate} */
  const update = {};
  if (data === null || typeof data !== "object" || Array.isArray(data)) return update;
  for (const [field, max] of Object.entries(MAX_LENGTH)) {
    const value = text(data[field], max);
    if (value !== undefined) update[field] = value;
  }
  const goals = score(data.score);
  if (goals) update.score = goals;
  return update;
}

/**
 * "updated 5 s ago", "updated 3 min ago", ...
 * @param {number} ms time since the update (negative counts as 0: clocks differ)
 * @returns {string}
 */
export function formatAge(ms) {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 60) return `updated ${seconds} s ago`;
  if (seconds < 3600) return `updated ${Math.floor(seconds / 60)} min ago`;
  return `updated ${Math.floor(seconds / 3600)} h ago`;
}
