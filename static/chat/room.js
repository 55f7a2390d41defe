/**
 * The room page: recent history and live messages of `room:<name>` through the realtime
 * client, a composer for signed-in people whose own messages stay marked pending until
 * the server's `ack`. Message text is only ever set with `textContent`: what people
 * write is data, never markup.
 * @module chat/room
 */

import { RealtimeClient, State } from "../realtime/client.js";

const config = JSON.parse(document.getElementById("room-config").textContent);
const list = document.getElementById("messages");
const statusEl = document.getElementById("status");
const notice = document.getElementById("notice");
const composer = document.getElementById("composer");
const input = document.getElementById("text");

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
  if (stick) window.scrollTo(0, document.body.scrollHeight);
}

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

client.subscribe(config.stream, {
  history: config.history,
  onMessage: render,
  onRecoveryFailed: reloadHistory,
  onError: (err) => showNotice(`This room cannot be read: ${err.message}`),
});

if (composer) {
  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
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
window.chatRoom = { client };
