/**
 * The room page: recent history and live messages of `room:<name>` through the realtime
 * client, older pages over HTTP as the reader scrolls up ("load older"), a composer for
 * signed-in people whose own messages stay marked pending until the server's `ack`, who
 * is here and who is typing (chat/presence.js). Message text is only ever set with
 * `textContent`: what people write is data, never markup.
 * @module chat/room
 */

import { RealtimeClient, State } from "../realtime/client.js";
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

/** Put a confirmed message at its seq's place, before any pending ones. */
function placeConfirmed(li, seq) {
  let before = list.querySelector("li.pending, li.failed");
  for (const other of list.querySelectorAll("li[data-seq]")) {
    if (other !== li && Number(other.dataset.seq) > seq) {
      before = other;
      break;
    }
  }
  list.insertBefore(li, before);
}

function forgetEpoch(newEpoch) {
  if (epoch === newEpoch) return;
  epoch = newEpoch;
  for (const li of bySeq.values()) li.remove();
  bySeq.clear();
  showBeginning(false);
}

/** Show a message from the stream (live, history or an HTTP reload), once per seq. */
function render(msg) {
  if (msg.epoch !== epoch) forgetEpoch(msg.epoch);
  const stick = nearBottom();
  let li = bySeq.get(msg.seq);
  if (li) {
    // Our own message, already placed when its ack came: fill in what the server knows.
    setTime(li, msg.ts);
    if (msg.sender) li.querySelector(".sender").textContent = msg.sender.name;
    return;
  }
  const mine = Boolean(config.user && msg.sender && msg.sender.id === config.user.id);
  li = messageElement({ text: textOf(msg.data), senderName: msg.sender ? msg.sender.name : "server", ts: msg.ts, mine });
  li.dataset.seq = String(msg.seq);
  bySeq.set(msg.seq, li);
  placeConfirmed(li, msg.seq);
  if (msg.seq === 1) showBeginning(true);
  if (msg.sender && typing) typing.stopped(msg.sender.id);
  if (stick) window.scrollTo(0, document.body.scrollHeight);
}

// --- older messages over HTTP ("load older", docs/protocol-extensions.md) ---------------

let loadingOlder = false;
let atBeginning = false;
/** The latest seq when the subscription began: where paging starts in an empty page. */
let subscribedAt = 0;

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

/** One page of messages older than the oldest shown, prepended without moving the reader. */
async function loadOlder() {
  if (loadingOlder || atBeginning || epoch === null) return;
  const pageEpoch = epoch;
  const before = oldestShown() ?? subscribedAt + 1;
  loadingOlder = true;
  olderButton.disabled = true;
  olderButton.textContent = "Loading…";
  try {
    const query = `before=${before}&epoch=${encodeURIComponent(pageEpoch)}&limit=${OLDER_PAGE}`;
    const url = `/api/streams/${encodeURIComponent(config.stream)}/messages?${query}`;
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.message : `HTTP ${response.status}`);
    if (epoch !== pageEpoch) return; // the stream restarted meanwhile: this page is of no use
    prependOlder(body.messages);
  } catch (err) {
    showNotice(`Older messages could not be loaded: ${err.message}`);
  } finally {
    loadingOlder = false;
    olderButton.disabled = false;
    olderButton.textContent = "Load older messages";
  }
}

/** `messages` come newest first; they go above what is shown, oldest at the top. None
 * at all means nothing older is kept: the beginning of the room. */
function prependOlder(messages) {
  const fresh = document.createDocumentFragment();
  for (const msg of [...messages].reverse()) {
    if (msg.epoch !== epoch || bySeq.has(msg.seq)) continue;
    const mine = Boolean(config.user && msg.sender && msg.sender.id === config.user.id);
    const li = messageElement({ text: textOf(msg.data), senderName: msg.sender ? msg.sender.name : "server", ts: msg.ts, mine });
    li.dataset.seq = String(msg.seq);
    bySeq.set(msg.seq, li);
    fresh.append(li);
  }
  // Keep what the reader looks at in place: the page grows above it by exactly this much.
  const heightBefore = document.documentElement.scrollHeight;
  const scrolledBefore = window.scrollY;
  list.prepend(fresh);
  markGaps();
  if (messages.length === 0 || bySeq.has(1)) showBeginning(true);
  window.scrollTo(0, scrolledBefore + document.documentElement.scrollHeight - heightBefore);
}

// The page keeps the reader's place itself, so the browser's own scroll anchoring must not add to it.
document.documentElement.style.overflowAnchor = "none";
olderButton.addEventListener("click", loadOlder);
// Only a move up near the top loads: the page's own scrolls (to the newest message while
// history arrives, below a prepended page) all go down.
let lastScrollY = window.scrollY;
window.addEventListener("scroll", () => {
  const movedUp = window.scrollY < lastScrollY;
  lastScrollY = window.scrollY;
  if (movedUp && window.scrollY < NEAR_TOP && bySeq.size > 0) loadOlder();
}, { passive: true });

/** Say where messages are missing between two shown ones (after a failed recovery). */
function markGaps() {
  for (const gap of list.querySelectorAll("li.gap")) gap.remove();
  let previous = null;
  for (const li of list.querySelectorAll("li[data-seq]")) {
    const seq = Number(li.dataset.seq);
    if (previous !== null && seq > previous + 1) {
      const gap = document.createElement("li");
      gap.className = "gap";
      const missing = seq - previous - 1;
      gap.textContent = `${missing} message${missing === 1 ? " is" : "s are"} no longer available`;
      list.insertBefore(gap, li);
    }
    previous = seq;
  }
}

/** `recovered: false`: the socket cannot fill the gap, so reload recent history over HTTP. */
async function reloadHistory(info) {
  forgetEpoch(info.epoch);
  const url = `/api/streams/${encodeURIComponent(config.stream)}/messages?limit=${config.history}`;
  try {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const body = await response.json();
    if (body.epoch !== epoch) forgetEpoch(body.epoch);
    for (const msg of body.messages) render({ ...msg, stream: config.stream });
    markGaps();
    showNotice("");
  } catch (err) {
    showNotice("Some earlier messages could not be loaded. Reload the page to see them.");
  }
}

const client = new RealtimeClient();
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

client.subscribe(config.stream, {
  history: config.history,
  onMessage: render,
  onSubscribed: (info) => {
    if (info.epoch !== epoch) forgetEpoch(info.epoch);
    subscribedAt = info.seq;
    if (info.seq === 0) showBeginning(true);
    presence.refresh(); // presence frames are never replayed: ask again on every (re)subscribe
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
    if (ack.epoch !== epoch) forgetEpoch(ack.epoch);
    if (bySeq.has(ack.seq)) {
      li.remove(); // the message frame came first and is already shown in its place
      return;
    }
    li.dataset.seq = String(ack.seq);
    bySeq.set(ack.seq, li);
    placeConfirmed(li, ack.seq);
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
window.chatRoom = { client, presence, typing, loadOlder };
