/**
 * A conversation page: a room (`room:<name>`), a private group (`group:<name>`) or a
 * direct conversation (`dm:A.B`), all alike (the chat 1.1 page contract, "Pages"). Recent history and live
 * messages through the realtime client, older pages over HTTP as the reader scrolls up
 * ("load older"), a composer for signed-in people whose own messages stay marked pending
 * until the server's `ack`, edits and deletions of one's own messages (or anyone's, for a
 * moderator), who is here and who is typing (chat/presence.js), the read position
 * (chat/read.js). This module wires the parts together: what is shown lives in
 * chat/model.js, the DOM in chat/view.js (text only ever through `textContent`: what
 * people write is data, never markup), paging in chat/history.js.
 * @module chat/room
 */

import { pageClient } from "../realtime/client.js";
import { ChatApi } from "./api.js";
import { rightsOf } from "./corrections.js";
import { MessageActions } from "./editing.js";
import { RoomHistory } from "./history.js";
import { RoomModel } from "./model.js";
import { PersonActions } from "./person-actions.js";
import { PresenceList, TypingIndicator, signalTyping } from "./presence.js";
import { ReadTracker } from "./read.js";
import { RoomView } from "./view.js";

const config = JSON.parse(document.getElementById("room-config").textContent);
const composer = document.getElementById("composer");
const input = document.getElementById("text");
const olderButton = document.getElementById("load-older");
const list = document.getElementById("messages");
/** "room", "group" or "dm": only the wording differs. */
const kind = config.kind || "room";
const what = kind === "room" ? "room" : "conversation";

/** Start loading older messages when the reader is this close to the top (px). */
const NEAR_TOP = 150;

const model = new RoomModel({ me: config.user });
const view = new RoomView(
  {
    list,
    status: document.getElementById("status"),
    notice: document.getElementById("notice"),
    olderButton,
    beginning: document.getElementById("beginning"),
    onLoadGap: (hole) => paging.fillHoles({ byHand: true, hole }),
  },
  {
    myName: config.user ? config.user.name : null,
    // Guests write nothing, so they correct nothing either.
    rightsOf: config.user ? (message) => rightsOf(message, { moderator: Boolean(config.moderator) }) : null,
  },
);
const paging = new RoomHistory({ model, view, stream: config.stream, history: config.history });
const api = new ChatApi();

const client = pageClient();
client.on("state", ({ newState }) => view.showStatus(newState));
client.on("closed", ({ code }) => view.showNotice(`The connection was closed (${code}). Reload the page to reconnect.`));
view.showStatus(client.state);

const people = new PersonActions({
  stream: config.stream,
  me: config.user,
  moderator: Boolean(config.moderator),
  api,
  onError: (text) => view.showNotice(text),
});
const presence = new PresenceList({
  client,
  stream: config.stream,
  list: document.getElementById("who"),
  count: document.getElementById("who-count"),
  me: config.user,
  actions: (id, name) => people.elementsFor(id, name),
});
const typing = new TypingIndicator({ client, stream: config.stream, element: document.getElementById("typing"), me: config.user });

/** The highest seq is read once the person sees it: the page in front, scrolled to the newest. */
const reading = config.user
  ? new ReadTracker({ stream: config.stream, known: config.read || null, send: (stream, position) => api.markRead(stream, position) })
  : null;
function sawLatest() {
  if (!reading || document.visibilityState !== "visible" || !view.nearBottom()) return;
  const seq = model.newest();
  if (seq !== null) reading.saw({ epoch: model.epoch, seq });
}

/** The message a link names (`#m<seq>`, as in a mention's notification), until it is shown. */
let linked = /^#m(\d+)$/.exec(window.location.hash) ? window.location.hash.slice(1) : null;
function showLinked() {
  const target = linked && document.getElementById(linked);
  if (!target) return false;
  linked = null;
  target.classList.add("linked");
  target.scrollIntoView({ block: "center" });
  return true;
}

/** Show a message from the stream (live or history), once per seq. */
function render(msg) {
  paging.forgetEpoch(msg.epoch);
  const stick = view.nearBottom();
  if (!paging.live(msg)) return;
  if (msg.sender) typing.stopped(msg.sender.id);
  if (showLinked()) return;
  if (stick && !linked) view.scrollToBottom();
  sawLatest();
}

let subscribedBefore = false;
let accessLost = false;
const sub = client.subscribe(config.stream, {
  history: config.history,
  occupancy: true, // a room past the presence cap shows "N here" from these
  onMessage: render,
  onSubscribed: (info) => {
    paging.forgetEpoch(info.epoch);
    paging.subscribed(info);
    // Presence frames are never replayed: ask again on every (re)subscribe.
    presence.subscribed({ first: !subscribedBefore });
    subscribedBefore = true;
  },
  onRecoveryFailed: () => paging.reload(),
  onError: (err) => {
    // Refused on a resubscribe: access went while the page was offline.
    if (err.code === "forbidden" && subscribedBefore) loseAccess();
    else view.showNotice(`This ${what} cannot be read: ${err.message}`);
  },
});

// A member removed (or banned) gets `forbidden` for the stream, then `unsubscribed`
// (docs/protocol.md): from then on nothing can be read or written here. The `forbidden`
// alone may be a refused typing signal (a muted member), so it takes both.
let forbiddenSeen = false;
client.on("error", (err) => {
  if (err.code === "forbidden" && err.frame && err.frame.stream === config.stream) forbiddenSeen = true;
});
client.on("unsubscribed", (frame) => {
  if (frame.stream === config.stream && forbiddenSeen) loseAccess();
});

/** Show that access is gone, for good: no composer, no buttons, no resubscribe on reconnect. */
function loseAccess() {
  if (accessLost) return;
  accessLost = true;
  view.lockReadOnly(`You no longer have access to this ${what}.`);
  sub.unsubscribe(); // the client forgets it, so a reconnect does not ask again
  presence.stop();
  if (reading) reading.stop();
  if (composer) {
    composer.classList.add("disabled");
    for (const el of composer.elements) el.disabled = true;
  }
}

new MessageActions({
  list,
  onEdit: (seq, text) => correct({ edit: seq, text }),
  onDelete: (seq) => correct({ delete: seq }),
});

/** Publish an edit or a deletion. Its `ack` folds it in at once, as its message frame
 * would (whichever comes first, the other finds its seq known). */
async function correct(data) {
  const ack = await client.publish(config.stream, data);
  render({ stream: config.stream, seq: ack.seq, epoch: ack.epoch, ts: Date.now(), data, sender: config.user });
  return ack;
}

olderButton.addEventListener("click", () => paging.loadOlderByHand());
// Only a move up near the top loads: the page's own scrolls (to the newest message while
// history arrives, below a prepended page) all go down.
let lastScrollY = window.scrollY;
window.addEventListener("scroll", () => {
  const movedUp = window.scrollY < lastScrollY;
  lastScrollY = window.scrollY;
  if (movedUp && window.scrollY < NEAR_TOP && model.size > 0) paging.loadOlder();
  sawLatest();
}, { passive: true });
document.addEventListener("visibilitychange", sawLatest);
window.addEventListener("focus", sawLatest);

if (composer) {
  const typed = signalTyping({ client, stream: config.stream, input });
  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || accessLost) return;
    input.value = "";
    typed();
    send(text);
  });
}

/** Publish `text`: shown at once as pending, at its seq's place once the `ack` comes. */
async function send(text) {
  const entry = model.addPending(text);
  view.addPending(entry, config.user.name);
  view.scrollToBottom();
  try {
    const ack = await client.publish(config.stream, { text });
    paging.forgetEpoch(ack.epoch);
    // Null when the message frame came first and is already shown in its place.
    const confirmed = model.confirm(entry.key, ack);
    view.confirmPending(entry.key, confirmed, confirmed ? model.after(confirmed.seq) : null);
    if (confirmed) paging.closeGapsNear(confirmed.seq);
    sawLatest();
  } catch (err) {
    model.fail(entry.key, err.code || err.message);
    view.failPending(entry.key, `not sent: ${err.message}`, `Not sent: ${err.code || err.message}`);
  }
}

// For people debugging the page from the console.
window.chatRoom = {
  client,
  presence,
  typing,
  model,
  reading,
  paging,
  loadOlder: (options) => paging.loadOlder(options),
  fillHoles: (options) => paging.fillHoles(options),
};
