/**
 * The room's history over HTTP (docs/protocol.md, "Older messages over HTTP"): older pages
 * as the reader scrolls up ("load older"), holes between shown messages filled in place,
 * and the reload after `recovered: false`.
 *
 * A `before` page can come back with a hole (`recovered: false`) or empty while older
 * messages exist: they left the backlog and the archiver has not written them yet. Such a
 * range is shown as pending and asked for again later, with growing waits, until it
 * arrives or the tries run out; only seq 1, or a room with no message at all, is its
 * beginning.
 * @module chat/history
 */

import { Retry, backoff } from "../realtime/backoff.js";
import { readMessages } from "../realtime/http.js";
import { holeSize } from "./model.js";

/** Messages per "load older" page. */
export const OLDER_PAGE = 50;
/** Waits before asking again for a range the archiver has not written yet (ms), and tries. */
export const RETRY_FIRST = 2000;
export const RETRY_LONGEST = 30000;
export const RETRY_TRIES = 8;
/** Holes between shown messages up to this wide are asked for by themselves, one page
 * each; a wider one waits for the reader to ask (its button). */
export const HOLE_PAGE = OLDER_PAGE;
/** Wait after a hole is filled before asking for the next one (ms). */
export const HOLE_PAUSE = 500;

/** The waits of a range asked for again: 2 s, doubled each time up to 30 s, give or take a quarter. */
const retryWait = backoff({ base: RETRY_FIRST, cap: RETRY_LONGEST, jitter: [0.75, 1.25] });

export class RoomHistory {
  /**
   * @param {object} options
   * @param {import("./model.js").RoomModel} options.model
   * @param {import("./view.js").RoomView} options.view
   * @param {string} options.stream
   * @param {number} options.history how many messages the reload after `recovered: false` asks for
   * @param {typeof readMessages} [options.read] the HTTP read (tests pass their own)
   */
  constructor({ model, view, stream, history, read = readMessages }) {
    this.model = model;
    this.view = view;
    this.stream = stream;
    this.history = history;
    this.read = read;
    this.atBeginning = false;
    /** The latest seq when the subscription began: where paging starts in an empty page. */
    this.subscribedAt = 0;
    /** The oldest shown seq whose older page came back empty though it is above 1. */
    this.emptyBelow = null;
    this.loadingOlder = false;
    this.fillingHole = false;
    this.holePause = null;
    this.olderRetry = new Retry(retryWait, { tries: RETRY_TRIES });
    this.holeRetry = new Retry(retryWait, { tries: RETRY_TRIES });
    /** Holes between shown messages given up after RETRY_TRIES: "epoch:above:below". */
    this.unavailable = new Set();
    /** Whether gap marks are drawn (a correction that fills a hole must redraw them). */
    this.gapsShown = false;
  }

  // --- what every part of the page goes through ------------------------------------------

  /** Follow the stream into `epoch`: a new one forgets what was shown and what paging knew. */
  forgetEpoch(epoch) {
    if (!this.model.setEpoch(epoch)) return;
    this.view.clear();
    this.gapsShown = false;
    this.reset();
    this.showBeginning(false);
  }

  /** The subscription's `subscribed` reply (after `forgetEpoch(info.epoch)`). */
  subscribed(info) {
    this.subscribedAt = info.seq;
    if (info.seq === 0) this.showBeginning(true);
  }

  /**
   * A message of the socket (live or history), once per seq. Our own message, already
   * placed when its ack came, gets what the server knows of it.
   * @returns {boolean} whether it was new
   */
  live(msg) {
    this.forgetEpoch(msg.epoch);
    if (this.model.has(msg.seq)) {
      const known = this.model.update(msg);
      if (known) this.view.update(known);
      return false;
    }
    const entry = this.model.add(msg);
    this.draw(entry);
    // A correction has no element to stand next to a gap mark: any mark may have closed.
    if (entry.correction && this.gapsShown) this.view.keepingPlace(() => this.markGaps());
    else this.closeGapsNear(entry.seq);
    if (entry.seq === 1) this.showBeginning(true);
    return true;
  }

  /** What `model.add` returned, drawn: a message at its place, or a correction over the
   * message it changes (nothing while that one is not loaded: it is folded in when it comes). */
  draw(entry) {
    if (!entry.correction) {
      this.view.place(entry, this.model.after(entry.seq));
      return;
    }
    const target = this.model.drawn(entry.correction.target);
    if (target) this.view.redraw(target);
  }

  /** A message just placed next to a gap mark may have closed that gap (the frame of the
   * message below our own, acked first): mark the gaps again. */
  closeGapsNear(seq) {
    if (this.view.nextToGap(seq)) this.view.keepingPlace(() => this.markGaps());
  }

  showBeginning(reached) {
    this.atBeginning = reached;
    this.view.showBeginning(reached);
  }

  /** Forget the paging state of an epoch that is gone. */
  reset() {
    this.emptyBelow = null;
    this.olderRetry.reset();
    this.holeRetry.reset();
    clearTimeout(this.holePause);
    this.holePause = null;
    this.unavailable.clear();
  }

  /** Put `messages` (any order) at their seq's place, once each. Returns how many were new. */
  insertBatch(messages) {
    const fresh = this.model.fresh(messages);
    for (const msg of fresh) this.draw(this.model.add(msg));
    if (this.model.has(1)) this.showBeginning(true);
    return fresh.length;
  }

  /** Put `messages` at their seq's place without moving what the reader looks at; mark the
   * holes left. Returns how many were new. */
  insertOlder(messages) {
    let added = 0;
    this.view.keepingPlace(() => {
      added = this.insertBatch(messages);
      this.markGaps();
    });
    return added;
  }

  // --- load older --------------------------------------------------------------------------

  /** One page of messages older than the oldest shown, above it without moving the reader.
   * A range that came back empty is asked again only by the retry's timer (`retrying`) or
   * the button (`byHand`), not by every scroll. A `recovered: false` page shows up as a
   * hole in the seqs, which fillHoles() asks for again. */
  async loadOlder({ retrying = false, byHand = false } = {}) {
    const { model } = this;
    if (this.loadingOlder || this.atBeginning || model.epoch === null) return;
    const before = model.oldest() ?? this.subscribedAt + 1;
    if (before === this.emptyBelow && !retrying && !byHand) return;
    const pageEpoch = model.epoch;
    let empty = false;
    this.loadingOlder = true;
    this.view.setOlderLoading(true);
    try {
      const body = await this.read(this.stream, { before, epoch: pageEpoch, limit: OLDER_PAGE });
      if (model.epoch !== pageEpoch) return; // the stream restarted meanwhile: this page is of no use
      const added = this.insertOlder(body.messages);
      if (body.seq === 0) {
        this.view.keepingPlace(() => this.showBeginning(true)); // the server has no message at all
      } else if (added === 0 && !model.has(1)) {
        // Nothing older came, yet seq 1 is not shown: not archived yet (or past retention).
        this.emptyBelow = before;
        this.olderRetry.later(() => this.loadOlder({ retrying: true }), `${pageEpoch}:${before}`);
        empty = true;
      }
    } catch (err) {
      this.view.showNotice(`Older messages could not be loaded: ${err.message}`);
    } finally {
      this.loadingOlder = false;
      this.view.setOlderLoading(false);
    }
    // Marked once the load is over: after the last try it says "not available" (the button still asks).
    if (empty) this.view.keepingPlace(() => this.markGaps());
    this.fillHoles();
  }

  /** The button: now, and a fresh round of retries after it. */
  loadOlderByHand() {
    this.olderRetry.reset();
    return this.loadOlder({ byHand: true });
  }

  // --- holes -------------------------------------------------------------------------------

  holeKey(hole) {
    return `${this.model.epoch}:${hole.above}:${hole.below}`;
  }

  /** The highest small hole between two shown messages not given up, or null. */
  highestHole() {
    for (const hole of this.model.holes()) {
      if (holeSize(hole) <= HOLE_PAGE && !this.unavailable.has(this.holeKey(hole))) return hole;
    }
    return null;
  }

  /** Ask for one page of a hole with `before` = the seq just above it: the highest small
   * hole, or the one the reader asked for (`hole`, `byHand`). What is still missing of a
   * small hole is asked again later with growing waits; the next hole after a pause. */
  async fillHoles({ retrying = false, byHand = false, hole = null } = {}) {
    const { model } = this;
    if (this.fillingHole || model.epoch === null || (this.holeRetry.waiting && !retrying && !byHand)) return;
    const asked = hole || this.highestHole();
    if (!asked) return;
    const pageEpoch = model.epoch;
    this.fillingHole = true;
    try {
      const body = await this.read(this.stream, { before: asked.above, epoch: pageEpoch, limit: Math.min(holeSize(asked), HOLE_PAGE) });
      if (model.epoch !== pageEpoch) return;
      this.insertOlder(body.messages);
    } catch (err) {
      // Counted as a try like an empty answer: the server may be out of reach for a while.
    } finally {
      this.fillingHole = false;
    }
    if (model.epoch !== pageEpoch) return;
    const left = model.holeBelow(asked.above);
    if (!left || holeSize(left) > HOLE_PAGE) {
      // Filled (or the rest of a wide hole, which waits for the reader): on to the next.
      clearTimeout(this.holePause);
      this.holePause = setTimeout(() => this.fillHoles(), HOLE_PAUSE);
    } else if (!this.holeRetry.later(() => this.fillHoles({ retrying: true }), this.holeKey(left))) {
      this.unavailable.add(this.holeKey(left));
      this.fillHoles(); // the next hole down, if any
    }
    this.view.keepingPlace(() => this.markGaps());
  }

  /** @returns {import("./view.js").Gap[]} where messages are missing: above the oldest shown
   * when its older page was empty, and between two shown ones */
  gaps() {
    const seqs = this.model.seqs;
    const gaps = [];
    const oldest = seqs.length ? seqs[0] : null;
    if (oldest !== null && this.emptyBelow !== null && this.emptyBelow === oldest && oldest > 1) {
      gaps.push({ kind: "older", before: oldest, missing: oldest - 1, retrying: this.olderRetry.waiting || this.loadingOlder });
    }
    for (let i = 1; i < seqs.length; i += 1) {
      const hole = { above: seqs[i], below: seqs[i - 1] };
      const missing = holeSize(hole);
      if (missing > HOLE_PAGE) gaps.push({ kind: "wide", before: hole.above, missing, hole });
      else if (missing > 0) gaps.push({ kind: "hole", before: hole.above, missing, retrying: !this.unavailable.has(this.holeKey(hole)) });
    }
    return gaps;
  }

  /** Say where messages are missing: pending while they are asked for again, else not available. */
  markGaps() {
    const gaps = this.gaps();
    this.gapsShown = gaps.length > 0;
    this.view.drawGaps(gaps);
  }

  /** Take away the shown messages below `seq`, with what paging knew of them. */
  dropBelow(seq) {
    this.view.remove(this.model.dropBelow(seq));
    this.view.clearGaps();
    this.gapsShown = false;
    this.reset();
    this.showBeginning(false);
  }

  // --- after `recovered: false` -----------------------------------------------------------

  /** The socket cannot fill the gap, so reload recent history over HTTP. When more than a
   * page is missing between what was shown and the reloaded page (hours offline in a busy
   * room), the old part goes and the reloaded page is a fresh view to page back from; a
   * smaller hole is filled in place. */
  async reload() {
    // The epoch is already the one of the reply: onSubscribed ran first (client.js, _onSubscribed).
    try {
      const body = await this.read(this.stream, { limit: this.history });
      this.forgetEpoch(body.epoch);
      const stick = this.view.nearBottom();
      const reloaded = body.messages.filter((msg) => msg.epoch === this.model.epoch && Number.isInteger(msg.seq));
      if (reloaded.length > 0) {
        const oldest = Math.min(...reloaded.map((msg) => msg.seq));
        const hole = this.model.holeBelow(oldest);
        if (hole && holeSize(hole) > HOLE_PAGE) this.dropBelow(oldest);
      }
      this.insertBatch(reloaded);
      this.markGaps();
      if (stick) this.view.scrollToBottom();
      this.fillHoles(); // a small range the socket could not fill may be in the archive
      this.view.showNotice("");
    } catch (err) {
      this.view.showNotice("Some earlier messages could not be loaded. Reload the page to see them.");
    }
  }
}
