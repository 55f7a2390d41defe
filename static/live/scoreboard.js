/**
 * The scoreboard page of `live:<name>` (docs/live-scores.md). It subscribes with
 * `history: 1`: each update carries the full state, so the latest one is the whole
 * scoreboard and a viewer who joins mid-match never replays the match. Later updates are
 * applied field by field; a missing or ill-typed field keeps what is shown. Every piece
 * of published text goes in with `textContent`, never as markup.
 * @module live/scoreboard
 */

import { pageClient, State } from "../realtime/client.js";
import { readMessages } from "../realtime/http.js";
import { formatAge, readUpdate } from "./update.js";

const config = JSON.parse(document.getElementById("live-config").textContent);
const $ = (id) => document.getElementById(id);
const board = $("board");
const connection = $("connection");
const updated = $("updated");
const notice = $("notice");
const events = $("events");

/** The event log keeps this many recent events, newest first. */
const MAX_EVENTS = 30;

/** The last message applied: (epoch, seq) to skip older ones from an HTTP reload, ts for the age. */
let applied = null;
/** Messages applied since the page opened (the tests read it: one on load, not a replay). */
let received = 0;
let everConnected = false;

const CONNECTION_TEXT = {
  connecting: "connecting…",
  live: "live",
  reconnecting: "reconnecting…",
  offline: "offline",
  stopped: "stopped",
};

function showConnection(name) {
  connection.dataset.state = name;
  connection.textContent = CONNECTION_TEXT[name];
}

function showNotice(text) {
  notice.textContent = text;
  notice.hidden = !text;
}

function onState({ newState }) {
  if (newState === State.CONNECTED) {
    everConnected = true;
    showConnection("live");
  } else if (newState === State.CONNECTING) {
    showConnection(everConnected ? "reconnecting" : "connecting");
  } else if (connection.dataset.state !== "stopped") {
    showConnection("offline");
  }
}

function logEvent(text, clock, seq) {
  const li = document.createElement("li");
  li.dataset.seq = String(seq);
  const when = document.createElement("span");
  when.className = "when";
  when.textContent = clock || "";
  const what = document.createElement("span");
  what.className = "text";
  what.textContent = text;
  li.append(when, what);
  events.prepend(li);
  while (events.children.length > MAX_EVENTS) events.lastElementChild.remove();
}

/** Apply one message of the stream, unless it is older than what is shown. */
function apply(msg) {
  if (applied && applied.epoch === msg.epoch && msg.seq <= applied.seq) return;
  applied = { epoch: msg.epoch, seq: msg.seq, ts: msg.ts };
  received += 1;
  const update = readUpdate(msg.data);
  for (const field of ["home", "away", "clock", "status"]) {
    if (update[field] !== undefined) $(field).textContent = update[field];
  }
  if (update.score) {
    $("home-score").textContent = String(update.score[0]);
    $("away-score").textContent = String(update.score[1]);
  }
  if (update.event !== undefined) logEvent(update.event, update.clock ?? $("clock").textContent, msg.seq);
  board.dataset.seq = String(msg.seq);
  board.dataset.status = $("status").textContent;
  showAge();
}

function showAge() {
  updated.textContent = applied ? formatAge(Date.now() - applied.ts) : "waiting for the first update";
}

/** `recovered: false`: the missed updates are gone, but the latest one is the whole state. */
async function reloadLatest() {
  try {
    const body = await readMessages(config.stream, { limit: 1 });
    for (const msg of body.messages) apply(msg);
  } catch (err) {
    showNotice("Some updates were missed; the score shows again with the next one.");
  }
}

const client = pageClient();
client.on("state", onState);
client.on("closed", ({ code }) => {
  showConnection("stopped");
  showNotice(`The server closed the connection (${code}). Reload the page to try again.`);
});
onState({ newState: client.state });
showAge();
setInterval(showAge, 1000);

/** "12,345 watching", from the `occupancy` frames (at most one a second, docs/protocol.md). */
const watching = $("watching");
client.on("occupancy", (frame) => {
  if (frame.stream !== config.stream || !Number.isInteger(frame.connections)) return;
  watching.textContent = `${frame.connections.toLocaleString("en")} watching`;
  watching.hidden = false;
});

client.subscribe(config.stream, {
  history: config.history,
  occupancy: true,
  onMessage: apply,
  onRecoveryFailed: reloadLatest,
  onError: (err) => showNotice(`This scoreboard cannot be read: ${err.message}`),
});

// For tests and for people debugging the page from the console.
window.scoreboard = {
  client,
  get received() {
    return received;
  },
};
