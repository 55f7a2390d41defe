/**
 * The room list's unread badges, live (the chat 1.1 page contract, "Room list live unread counts"): the page's
 * one connection (the bell's, realtime/client.js: the session cookie is the credential,
 * reconnects with realtime/backoff.js) follows `user:ME`, where `read` frames say a
 * conversation was read on some page, and each listed conversation without history, so
 * that new messages raise their badge. The counting is chat/unread.js; this module wires
 * it to the `#conversations` items.
 * @module chat/list
 */

import { pageClient } from "../realtime/client.js";
import { ChatApi } from "./api.js";
import { UnreadCounts } from "./unread.js";

/** Streams a connection may follow at most (the server's RT_MAX_STREAMS is 100 by
 * default); a few stay for the bell and the rest of the page. The list is newest first,
 * so the conversations left out are the quiet ones. */
export const MAX_FOLLOWED = 90;

const configElement = document.getElementById("list-config");
const config = configElement ? JSON.parse(configElement.textContent) : null;
const list = document.getElementById("conversations");

if (config && config.user && list) start(config, list);

/** @param {{user: {id: string}, streams: string[]}} config @param {HTMLElement} list */
function start(config, list) {
  /** @type {Map<string, HTMLLIElement>} */
  const items = new Map();
  for (const li of list.querySelectorAll("li[data-stream]")) items.set(li.dataset.stream, li);
  const streams = [...new Set(Array.isArray(config.streams) ? config.streams : [])].filter((stream) => items.has(stream)).slice(0, MAX_FOLLOWED);
  const initial = Object.fromEntries(streams.map((stream) => [stream, Number(items.get(stream).dataset.unread) || 0]));
  const counts = new UnreadCounts({ me: String(config.user.id), initial });
  const api = new ChatApi();

  function show(stream, count) {
    const li = items.get(stream);
    if (!li || count === null) return;
    li.dataset.unread = String(count);
    const badge = li.querySelector(".unread");
    badge.textContent = String(count);
    badge.setAttribute("aria-label", `${count} unread`);
    badge.hidden = count === 0;
  }

  /** Messages went by unseen (`recovered: false`): the server's counts again. */
  async function reloadCounts() {
    try {
      const body = await api.conversations();
      for (const conversation of body.conversations || []) show(conversation.stream, counts.reset(conversation.stream, conversation.unread));
    } catch (err) {
      // The badges stay as they were; the next read frame or reload puts them right.
    }
  }

  const client = pageClient();
  // The bell (feed/bell.js, loaded first) may already follow user:ME on this connection:
  // the `read` frames come to the connection either way.
  const userStream = `user:${config.user.id}`;
  if (!client.subs.has(userStream)) client.subscribe(userStream, {});
  client.on("read", (frame) => show(frame.stream, counts.read(frame)));

  for (const stream of streams) {
    client.subscribe(stream, {
      onSubscribed: (info) => show(stream, counts.subscribed(stream, info)),
      onMessage: (msg) => {
        const before = counts.unread(stream);
        const after = counts.message(msg);
        show(stream, after);
        if (after !== null && after > before) list.prepend(items.get(stream)); // newest first, as the server lists them
      },
      onRecoveryFailed: () => reloadCounts(),
    });
  }
}
