/**
 * The read position of a conversation page (the chat 1.1 page contract, "Read position"): as the person sees the
 * latest messages (the page visible, scrolled to the newest), the highest seq shown goes
 * to `POST /api/read/{stream}`, at most once per READ_DEBOUNCE while messages keep coming
 * and never backwards, so the room list's unread badges (chat/unread.js) follow.
 * @module chat/read
 */

/** Wait between seeing a message and saying so (ms): a burst of messages is one POST. */
export const READ_DEBOUNCE = 300;

/**
 * @typedef {{epoch: string, seq: number}} Position
 */

/**
 * @param {Position | null} candidate
 * @param {Position | null} known what the server keeps (or was last told)
 * @returns {boolean} whether `candidate` moves it: later in the same epoch, or any seq
 *   of another epoch (the old one's seqs are gone)
 */
export function isAhead(candidate, known) {
  if (!candidate || !candidate.epoch || !(candidate.seq >= 1)) return false;
  if (!known || known.epoch !== candidate.epoch) return true;
  return candidate.seq > known.seq;
}

export class ReadTracker {
  /**
   * @param {object} options
   * @param {string} options.stream
   * @param {(stream: string, position: Position) => Promise<Position>} options.send the POST
   * @param {Position | null} [options.known] the server's position at load (`config.read`)
   * @param {number} [options.wait] ms
   */
  constructor({ stream, send, known = null, wait = READ_DEBOUNCE }) {
    this.stream = stream;
    this.sendPosition = send;
    this.known = known && known.epoch ? { epoch: known.epoch, seq: known.seq } : null;
    this.wait = wait;
    /** @type {Position | null} the furthest seen, not sent yet */
    this.seen = null;
    this.timer = null;
    this.inFlight = false;
    this.stopped = false;
  }

  /** The person sees everything up to `position`: said within `wait`. */
  saw(position) {
    if (this.stopped || !isAhead(position, this.seen || this.known)) return;
    this.seen = { epoch: position.epoch, seq: position.seq };
    if (this.timer === null && !this.inFlight) this.timer = setTimeout(() => this.flush(), this.wait);
  }

  /** Send what was seen now (the timer's end). */
  async flush() {
    clearTimeout(this.timer);
    this.timer = null;
    const position = this.seen;
    if (this.stopped || this.inFlight || !isAhead(position, this.known)) return;
    this.inFlight = true;
    try {
      await this.sendPosition(this.stream, position);
      if (isAhead(position, this.known)) this.known = position;
    } catch (err) {
      // Not kept: the next message seen tries again; a badge that lags is no harm.
    } finally {
      this.inFlight = false;
    }
    if (this.seen === position) this.seen = null;
    else if (isAhead(this.seen, this.known)) this.timer = setTimeout(() => this.flush(), this.wait);
  }

  /** No access any more, or the page goes: nothing more is sent. */
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = null;
  }
}
