/**
 * The room page: recent history and live messages of `room:<name>` through the realtime
 * client, older pages over HTTP as the reader scrolls up ("load older"), a composer for
 * signed-in people whose own messages stay marked pending until the server's `ack`, who
 * is here and who is typing (chat/presence.js). Message text is only ever set with
 * `textContent`: what people write is data, never markup.
 * @module chat/room
 */

import { pageClient, State } from "../realtime/client.js";
import { readMessages } from "../realtime/http.js";
import { PresenceList, TypingIndicator, signalTyping } from "./presence.js";

const config = JSON.parse(document.getElementById("room-config").textContent);
const list = document.getElementById("messages");
const statusEl = document.getElementById("status");
const notice = document.getElementById("notice");
const composer = document.getElementById("composer");
const input = document.getElementById("text");
const olderButton = document.getElementById("load-older");
const beginning = document.getElementById("beginning");

/** Messages per "load older" page. */
const OLDER_PAGE = 50;
/** Start loading older messages when the reader is this close to the top (px). */
const NEAR_TOP = 150;

/** Rendered messages of the current epoch, by seq. */
let epoch = null;
const bySeq = new Map();

const STATUS_TEXT = {
  [State.CONNECTED]: "live",
  [State.CONNECTING]: "connecting…",
  [State.DISCONNECTED]: "offline",
};

function showStatus(state) {
  statusEl.dataset.state = state;
  statusEl.textContent = STATUS_TEXT[state] || state;
}

function showNotice(text) {
  notice.textContent = text;
  notice.hidden = !text;
}

function formatTime(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** Build one `<li>`; every piece of user data goes through textContent. */
function messageElement({ text, senderName, ts, mine }) {
  const li = document.createElement("li");
  li.className = "message" + (mine ? " mine" : "");
  const meta = document.createElement("div");
  meta.className = "meta";
  const sender = document.createElement("span");
  sender.className = "sender";
  sender.textContent = senderName;
  const time = document.createElement("time");
  time.className = "time";
  meta.append(sender, time);
  const body = document.createElement("div");
  body.className = "text";
  body.textContent = text;
  li.append(meta, body);
  setTime(li, ts);
  return li;
}

function setTime(li, ts) {
  const time = li.querySelector("time");
  time.dateTime = new Date(ts).toISOString();
  time.title = new Date(ts).toLocaleString();
  time.textContent = formatTime(ts);
}

function textOf(data) {
  if (data && typeof data.text === "string") return data.text;
  return JSON.stringify(data); // not a chat message: still shown, still as text
}

function nearBottom() {
  return window.innerHeight + window.scrollY >= document.body.scrollHeight - 80;
}

/** The `<li>` of a message the server has given a seq, known by that seq from now on; the
 * caller puts it in place. */
function confirmedElement(msg) {
  const mine = Boolean(config.user && msg.sender && msg.sender.id === config.user.id);
  const li = messageElement({ text: textOf(msg.data), senderName: msg.sender ? msg.sender.name : "server", ts: msg.ts, mine });
  li.dataset.seq = String(msg.seq);
  bySeq.set(msg.seq, li);
  return li;
}

/** Where confirmed messages end: before the first pending or failed one of ours. */
function confirmedEnd() {
  return list.querySelector("li.pending, li.failed");
}

/** Put a confirmed message at its seq's place, before any pending ones. A live message is
 * nearly always the newest: that is checked first, without walking the list. */
function placeConfirmed(li, seq) {
  const end = confirmedEnd();
  let last = end ? end.previousElementSibling : list.lastElementChild;
  while (last && !last.dataset.seq) last = last.previousElementSibling;
  if (!last || Number(last.dataset.seq) < seq) {
    list.insertBefore(li, end);
    return;
  }
  let before = end;
  for (const other of list.querySelectorAll("li[data-seq]")) {
    if (other !== li && Number(other.dataset.seq) > seq) {
      before = other;
      break;
    }
  }
  list.insertBefore(li, before);
}

/** A message just placed next to a gap label may have closed that gap (the frame of the
 * message below our own, acked first): mark the gaps again. */
function closeGapsNear(li) {
  const near = [li.previousElementSibling, li.nextElementSibling];
  if (near.some((el) => el && el.classList.contains("gap"))) keepingPlace(markGaps);
}

/** Put `messages` (any order) at their seq's place, once each, in one ordered pass over
 * what is shown. Returns how many were new. */
function insertBatch(messages) {
  const fresh = messages
    .filter((msg) => msg.epoch === epoch && Number.isInteger(msg.seq) && !bySeq.has(msg.seq))
    .sort((a, b) => a.seq - b.seq);
  const shown = [...list.querySelectorAll("li[data-seq]")];
  const end = confirmedEnd();
  let next = 0;
  for (const msg of fresh) {
    while (next < shown.length && Number(shown[next].dataset.seq) < msg.seq) next += 1;
    list.insertBefore(confirmedElement(msg), next < shown.length ? shown[next] : end);
  }
  if (bySeq.has(1)) showBeginning(true);
  return fresh.length;
}

/** Take every shown message of this epoch away, and what paging knew about them. */
function clearShown() {
  for (const li of bySeq.values()) li.remove();
  bySeq.clear();
  for (const gap of list.querySelectorAll("li.gap")) gap.remove();
  resetOlder();
  showBeginning(false);
}

function forgetEpoch(newEpoch) {
  if (epoch === newEpoch) return;
  epoch = newEpoch;
  clearShown();
}

/** Show a message from the stream (live, history or an HTTP reload), once per seq. */
function render(msg) {
  forgetEpoch(msg.epoch);
  const stick = nearBottom();
  let li = bySeq.get(msg.seq);
  if (li) {
    // Our own message, already placed when its ack came: fill in what the server knows.
    setTime(li, msg.ts);
    if (msg.sender) li.querySelector(".sender").textContent = msg.sender.name;
    return;
  }
  li = confirmedElement(msg);
  placeConfirmed(li, msg.seq);
  closeGapsNear(li);
  if (msg.seq === 1) showBeginning(true);
  if (msg.sender && typing) typing.stopped(msg.sender.id);
  if (stick) window.scrollTo(0, document.body.scrollHeight);
}

// --- older messages over HTTP ("load older", docs/protocol-extensions.md) ---------------
//
// A `before` page can come back with a hole (`recovered: false`) or empty while older
// messages exist: they left the backlog and the archiver has not written them yet. Such a
// range is shown as pending and asked for again later, with growing waits, until it
// arrives or the tries run out; only seq 1, or a room with no message at all, is its
// beginning.

/** Waits before asking again for a range the archiver has not written yet (ms), and tries. */
const RETRY_FIRST = 2000;
const RETRY_LONGEST = 30000;
const RETRY_TRIES = 8;
/** Holes between shown messages up to this wide are asked for by themselves, one page
 * each; a wider one waits for the reader to ask (its button). */
const HOLE_PAGE = OLDER_PAGE;
/** Wait after a hole is filled before asking for the next one (ms). */
const HOLE_PAUSE = 500;

/** Growing, bounded waits for one range at a time: a new range starts over. */
class Retry {
  constructor() {
    this.range = null;
    this.tries = 0;
    this.timer = null;
  }

  /** Call `ask` later for `range`; false once `range` has been tried RETRY_TRIES times. */
  later(range, ask) {
    if (range !== this.range) {
      this.range = range;
      this.tries = 0;
    }
    if (this.tries >= RETRY_TRIES) return false;
    const wait = Math.min(RETRY_LONGEST, RETRY_FIRST * 2 ** this.tries) * (0.75 + Math.random() / 2);
    this.tries += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      ask();
    }, wait);
    return true;
  }

  get waiting() {
    return this.timer !== null;
  }

  reset() {
    clearTimeout(this.timer);
    this.timer = null;
    this.range = null;
    this.tries = 0;
  }
}

let atBeginning = false;
/** The latest seq when the subscription began: where paging starts in an empty page. */
let subscribedAt = 0;
/** The oldest shown seq whose older page came back empty though it is above 1. */
let emptyBelow = null;
let loadingOlder = false;
let fillingHole = false;
let holePause = null;
const olderRetry = new Retry();
const holeRetry = new Retry();
/** Holes between shown messages given up after RETRY_TRIES: "epoch:above:below". */
const unavailable = new Set();

function showBeginning(reached) {
  atBeginning = reached;
  beginning.hidden = !reached;
  olderButton.hidden = reached;
}

function oldestShown() {
  let oldest = null;
  for (const seq of bySeq.keys()) if (oldest === null || seq < oldest) oldest = seq;
  return oldest;
}

/** Forget the paging state of an epoch that is gone. */
function resetOlder() {
  emptyBelow = null;
  olderRetry.reset();
  holeRetry.reset();
  clearTimeout(holePause);
  holePause = null;
  unavailable.clear();
}

/** One page of messages older than the oldest shown, above it without moving the reader.
 * A range that came back empty is asked again only by the retry's timer (`retrying`) or
 * the button (`byHand`), not by every scroll. A `recovered: false` page shows up as a
 * hole in the seqs, which fillHoles() asks for again. */
async function loadOlder({ retrying = false, byHand = false } = {}) {
  if (loadingOlder || atBeginning || epoch === null) return;
  const before = oldestShown() ?? subscribedAt + 1;
  if (before === emptyBelow && !retrying && !byHand) return;
  const pageEpoch = epoch;
  loadingOlder = true;
  olderButton.disabled = true;
  olderButton.textContent = "Loading…";
  try {
    const body = await readMessages(config.stream, { before, epoch: pageEpoch, limit: OLDER_PAGE });
    if (epoch !== pageEpoch) return; // the stream restarted meanwhile: this page is of no use
    const added = insertOlder(body.messages);
    if (body.seq === 0) {
      keepingPlace(() => showBeginning(true)); // the server has no message at all
    } else if (added === 0 && !bySeq.has(1)) {
      // Nothing older came, yet seq 1 is not shown: not archived yet (or past retention).
      emptyBelow = before;
      olderRetry.later(`${pageEpoch}:${before}`, () => loadOlder({ retrying: true }));
      keepingPlace(markGaps); // after the last try: "not available", and the button still asks
    }
  } catch (err) {
    showNotice(`Older messages could not be loaded: ${err.message}`);
  } finally {
    loadingOlder = false;
    olderButton.disabled = false;
    olderButton.textContent = "Load older messages";
  }
  fillHoles();
}

/** Put `messages` at their seq's place without moving what the reader looks at; mark the
 * holes left. Returns how many were new. */
function insertOlder(messages) {
  let added = 0;
  keepingPlace(() => {
    added = insertBatch(messages);
    markGaps();
  });
  return added;
}

/** Change the page so that the first message on screen stays where it is: what goes in
 * above it pushes the rest down by exactly its height. */
function keepingPlace(change) {
  let anchor = null;
  for (const li of list.querySelectorAll("li[data-seq]")) {
    if (li.getBoundingClientRect().bottom > 0) {
      anchor = li;
      break;
    }
  }
  const topBefore = anchor ? anchor.getBoundingClientRect().top : 0;
  change();
  if (anchor && anchor.isConnected) window.scrollBy(0, anchor.getBoundingClientRect().top - topBefore);
}

function holeKey(hole) {
  return `${epoch}:${hole.above}:${hole.below}`;
}

function holeSize(hole) {
  return hole.above - hole.below - 1;
}

/** The hole just below the seq `above` (shown or not): {above, below} seqs, or null. */
function holeBelow(above) {
  let below = null;
  for (const seq of bySeq.keys()) if (seq < above && (below === null || seq > below)) below = seq;
  return below !== null && above > below + 1 ? { above, below } : null;
}

/** The highest small hole between two shown messages not given up, or null. */
function highestHole() {
  const seqs = [...bySeq.keys()].sort((a, b) => b - a);
  for (let i = 1; i < seqs.length; i += 1) {
    const hole = { above: seqs[i - 1], below: seqs[i] };
    if (holeSize(hole) > 0 && holeSize(hole) <= HOLE_PAGE && !unavailable.has(holeKey(hole))) return hole;
  }
  return null;
}

/** Ask for one page of a hole with `before` = the seq just above it: the highest small
 * hole, or the one the reader asked for (`hole`, `byHand`). What is still missing of a
 * small hole is asked again later with growing waits; the next hole after a pause. */
async function fillHoles({ retrying = false, byHand = false, hole = null } = {}) {
  if (fillingHole || epoch === null || (holeRetry.waiting && !retrying && !byHand)) return;
  const asked = hole || highestHole();
  if (!asked) return;
  const pageEpoch = epoch;
  fillingHole = true;
  try {
    const body = await readMessages(config.stream, { before: asked.above, epoch: pageEpoch, limit: Math.min(holeSize(asked), HOLE_PAGE) });
    if (epoch !== pageEpoch) return;
    insertOlder(body.messages);
  } catch (err) {
    // Counted as a try like an empty answer: the server may be out of reach for a while.
  } finally {
    fillingHole = false;
  }
  if (epoch !== pageEpoch) return;
  const left = holeBelow(asked.above);
  if (!left || holeSize(left) > HOLE_PAGE) {
    // Filled (or the rest of a wide hole, which waits for the reader): on to the next.
    clearTimeout(holePause);
    holePause = setTimeout(() => fillHoles(), HOLE_PAUSE);
  } else if (!holeRetry.later(holeKey(left), () => fillHoles({ retrying: true }))) {
    unavailable.add(holeKey(left));
    fillHoles(); // the next hole down, if any
  }
  keepingPlace(markGaps);
}

// The page keeps the reader's place itself, so the browser's own scroll anchoring must not add to it.
document.documentElement.style.overflowAnchor = "none";
olderButton.addEventListener("click", () => {
  olderRetry.reset(); // asked by hand: now, and a fresh round of retries after it
  loadOlder({ byHand: true });
});
// Only a move up near the top loads: the page's own scrolls (to the newest message while
// history arrives, below a prepended page) all go down.
let lastScrollY = window.scrollY;
window.addEventListener("scroll", () => {
  const movedUp = window.scrollY < lastScrollY;
  lastScrollY = window.scrollY;
  if (movedUp && window.scrollY < NEAR_TOP && bySeq.size > 0) loadOlder();
}, { passive: true });

function gapElement(text, pending) {
  const gap = document.createElement("li");
  gap.className = "gap" + (pending ? " retrying" : "");
  gap.textContent = text;
  return gap;
}

/** A hole too wide to fill by itself: one page of it (the newest) when the reader asks. */
function wideGapElement(hole) {
  const gap = gapElement(`${counted(holeSize(hole))} not loaded `, false);
  const button = document.createElement("button");
  button.type = "button";
  button.className = "load-gap";
  button.textContent = "Load more";
  button.addEventListener("click", () => fillHoles({ byHand: true, hole }));
  gap.append(button);
  return gap;
}

function counted(count, what = "message") {
  return `${count} ${what}${count === 1 ? "" : "s"}`;
}

/** Say where messages are missing: above the oldest shown when its older page was empty,
 * and between two shown ones; pending while they are asked for again, else not available. */
function markGaps() {
  for (const gap of list.querySelectorAll("li.gap")) gap.remove();
  const shown = list.querySelectorAll("li[data-seq]");
  const oldest = oldestShown();
  if (shown.length > 0 && emptyBelow !== null && emptyBelow === oldest && oldest > 1) {
    const text = olderRetry.waiting || loadingOlder
      ? `${counted(oldest - 1, "older message")} not available yet — retrying`
      : "Older messages are not available";
    list.insertBefore(gapElement(text, olderRetry.waiting || loadingOlder), shown[0]);
  }
  let previous = null;
  for (const li of shown) {
    const seq = Number(li.dataset.seq);
    if (previous !== null && seq - previous - 1 > HOLE_PAGE) {
      list.insertBefore(wideGapElement({ above: seq, below: previous }), li);
    } else if (previous !== null && seq > previous + 1) {
      const missing = seq - previous - 1;
      const pending = !unavailable.has(holeKey({ above: seq, below: previous }));
      const text = pending
        ? `${counted(missing)} not available yet — retrying`
        : `${counted(missing)} ${missing === 1 ? "is" : "are"} not available`;
      list.insertBefore(gapElement(text, pending), li);
    }
    previous = seq;
  }
}

/** Take away the shown messages below `seq`, with what paging knew of them. */
function dropBelow(seq) {
  for (const [shown, li] of bySeq) {
    if (shown < seq) {
      li.remove();
      bySeq.delete(shown);
    }
  }
  for (const gap of list.querySelectorAll("li.gap")) gap.remove();
  resetOlder();
  showBeginning(false);
}

/** `recovered: false`: the socket cannot fill the gap, so reload recent history over HTTP.
 * When more than a page is missing between what was shown and the reloaded page (hours
 * offline in a busy room), the old part goes and the reloaded page is a fresh view to
 * page back from; a smaller hole is filled in place. */
async function reloadHistory() {
  // The epoch is already the one of `info`: onSubscribed ran first (client.js, _onSubscribed).
  try {
    const body = await readMessages(config.stream, { limit: config.history });
    forgetEpoch(body.epoch);
    const stick = nearBottom();
    const reloaded = body.messages.filter((msg) => msg.epoch === epoch && Number.isInteger(msg.seq));
    if (reloaded.length > 0) {
      const oldest = Math.min(...reloaded.map((msg) => msg.seq));
      const hole = holeBelow(oldest);
      if (hole && holeSize(hole) > HOLE_PAGE) dropBelow(oldest);
    }
    insertBatch(reloaded);
    markGaps();
    if (stick) window.scrollTo(0, document.body.scrollHeight);
    fillHoles(); // a small range the socket could not fill may be in the archive
    showNotice("");
  } catch (err) {
    showNotice("Some earlier messages could not be loaded. Reload the page to see them.");
  }
}

const client = pageClient();
client.on("state", ({ newState }) => showStatus(newState));
client.on("closed", ({ code }) => showNotice(`The connection was closed (${code}). Reload the page to reconnect.`));
showStatus(client.state);

const presence = new PresenceList({
  client,
  stream: config.stream,
  list: document.getElementById("who"),
  count: document.getElementById("who-count"),
  me: config.user,
});
const typing = new TypingIndicator({ client, stream: config.stream, element: document.getElementById("typing"), me: config.user });

let subscribedBefore = false;
client.subscribe(config.stream, {
  history: config.history,
  onMessage: render,
  onSubscribed: (info) => {
    forgetEpoch(info.epoch);
    subscribedAt = info.seq;
    if (info.seq === 0) showBeginning(true);
    // Presence frames are never replayed: ask again on every (re)subscribe.
    presence.subscribed({ first: !subscribedBefore });
    subscribedBefore = true;
  },
  onRecoveryFailed: reloadHistory,
  onError: (err) => showNotice(`This room cannot be read: ${err.message}`),
});

if (composer) {
  const typed = signalTyping({ client, stream: config.stream, input });
  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    typed();
    send(text);
  });
}

async function send(text) {
  const li = messageElement({ text, senderName: config.user.name, ts: Date.now(), mine: true });
  li.classList.add("pending");
  li.title = "sending…";
  list.append(li);
  window.scrollTo(0, document.body.scrollHeight);
  try {
    const ack = await client.publish(config.stream, { text });
    li.classList.remove("pending");
    li.removeAttribute("title");
    forgetEpoch(ack.epoch);
    if (bySeq.has(ack.seq)) {
      li.remove(); // the message frame came first and is already shown in its place
      return;
    }
    li.dataset.seq = String(ack.seq);
    bySeq.set(ack.seq, li);
    placeConfirmed(li, ack.seq);
    closeGapsNear(li);
  } catch (err) {
    li.classList.remove("pending");
    li.classList.add("failed");
    li.title = `not sent: ${err.message}`;
    const why = document.createElement("div");
    why.className = "why";
    why.textContent = `Not sent: ${err.code || err.message}`;
    li.append(why);
  }
}

// For people debugging the page from the console.
window.chatRoom = { client, presence, typing, loadOlder, fillHoles };
