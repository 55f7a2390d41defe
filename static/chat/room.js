/**
 * The room page: recent history and live messages of `room:<name>` through the realtime
 * client, older pages over HTTP as the reader scrolls up ("load older"), a composer for
 * signed-in people whose own messages stay marked pending until the server's `ack`, who
 * is here and who is typing (chat/presence.js). This module wires the parts together:
 * what is shown lives in chat/model.js, the DOM in chat/view.js (text only ever through
 * `textContent`: what people write is data, never markup), paging in chat/history.js.
 * @module chat/room
 */

import { pageClient } from "../realtime/client.js";
import { RoomHistory } from "./history.js";
import { RoomModel } from "./model.js";
import { PresenceList, TypingIndicator, signalTyping } from "./presence.js";
import { RoomView } from "./view.js";

const config = JSON.parse(document.getElementById("room-config").textContent);
const composer = document.getElementById("composer");
const input = document.getElementById("text");
const olderButton = document.getElementById("load-older");

/** Start loading older messages when the reader is this close to the top (px). */
const NEAR_TOP = 150;

const model = new RoomModel({ me: config.user });
const view = new RoomView({
  list: document.getElementById("messages"),
  status: document.getElementById("status"),
  notice: document.getElementById("notice"),
  olderButton,
  beginning: document.getElementById("beginning"),
  onLoadGap: (hole) => paging.fillHoles({ byHand: true, hole }),
});
const paging = new RoomHistory({ model, view, stream: config.stream, history: config.history });

const client = pageClient();
client.on("state", ({ newState }) => view.showStatus(newState));
client.on("closed", ({ code }) => view.showNotice(`The connection was closed (${code}). Reload the page to reconnect.`));
view.showStatus(client.state);

const presence = new PresenceList({
  client,
  stream: config.stream,
  list: document.getElementById("who"),
  count: document.getElementById("who-count"),
  me: config.user,
});
const typing = new TypingIndicator({ client, stream: config.stream, element: document.getElementById("typing"), me: config.user });

/** Show a message from the stream (live or history), once per seq. */
function render(msg) {
  paging.forgetEpoch(msg.epoch);
  const stick = view.nearBottom();
  if (!paging.live(msg)) return;
  if (msg.sender) typing.stopped(msg.sender.id);
  if (stick) view.scrollToBottom();
}

let subscribedBefore = false;
client.subscribe(config.stream, {
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
  onError: (err) => view.showNotice(`This room cannot be read: ${err.message}`),
});

olderButton.addEventListener("click", () => paging.loadOlderByHand());
// Only a move up near the top loads: the page's own scrolls (to the newest message while
// history arrives, below a prepended page) all go down.
let lastScrollY = window.scrollY;
window.addEventListener("scroll", () => {
  const movedUp = window.scrollY < lastScrollY;
  lastScrollY = window.scrollY;
  if (movedUp && window.scrollY < NEAR_TOP && model.size > 0) paging.loadOlder();
}, { passive: true });

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
  paging,
  loadOlder: (options) => paging.loadOlder(options),
  fillHoles: (options) => paging.fillHoles(options),
};
