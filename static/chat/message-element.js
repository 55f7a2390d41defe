/**
 * One message's `<li>`: who wrote it and when, its text with `@mentions` marked, "edited"
 * or "message deleted" in place, and the Edit / Delete buttons the reader is offered.
 * What people write is data, never markup: every piece goes through `textContent` or a
 * text node, mentions included (chat/mentions.js cuts the text, this module only wraps).
 * @module chat/message-element
 */

import { mentionPieces, mentions } from "./mentions.js";

/** What a message without a sender (`sender: null`: server code, a backend) shows in
 * place of a name. Its own element and class, never a `.sender`: a person who signs up
 * as "server" gets a name like any other, not this label. */
const SERVER_LABEL = "from the server";

/** What a withdrawn message shows instead of its text. */
export const DELETED_TEXT = "message deleted";

function formatTime(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function span(className, text) {
  const el = document.createElement("span");
  el.className = className;
  el.textContent = text;
  return el;
}

function button(className, text) {
  const el = document.createElement("button");
  el.type = "button";
  el.className = className;
  el.textContent = text;
  return el;
}

export function setTime(li, ts) {
  const time = li.querySelector("time");
  time.dateTime = new Date(ts).toISOString();
  time.title = new Date(ts).toLocaleString();
  time.textContent = formatTime(ts);
}

/**
 * The text, `@name` runs as `<span class="mention">`, the rest as text nodes.
 * @returns {boolean} whether `myName` is mentioned
 */
function fillText(body, text, myName) {
  const pieces = mentionPieces(text);
  body.replaceChildren(
    ...pieces.map((piece) => (piece.name === undefined ? document.createTextNode(piece.text) : span("mention", piece.text))),
  );
  return mentions(pieces, myName);
}

/**
 * @typedef {object} Drawn what one `<li>` shows
 * @property {string} text
 * @property {string | null} senderName null: a message of the server
 * @property {number} ts
 * @property {boolean} mine
 * @property {boolean} [edited]
 * @property {boolean} [deleted]
 */

/**
 * (Re)draw `li` as `message`: its classes and children from scratch, so that an edit, a
 * deletion or a confirmation shows the same as a message loaded that way.
 * @param {HTMLLIElement} li
 * @param {Drawn} message
 * @param {{myName?: string | null, rights?: {edit: boolean, delete: boolean} | null}} [options]
 *   `rights` null: no buttons (not confirmed yet: no seq to name)
 * @returns {HTMLLIElement} li
 */
export function drawMessage(li, message, { myName = null, rights = null } = {}) {
  const fromServer = message.senderName === null;
  const meta = document.createElement("div");
  meta.className = "meta";
  const time = document.createElement("time");
  time.className = "time";
  meta.append(fromServer ? span("server-label", SERVER_LABEL) : span("sender", message.senderName), time);
  const body = document.createElement("div");
  body.className = "text";
  let mentioned = false;
  if (message.deleted) body.textContent = DELETED_TEXT;
  else mentioned = fillText(body, message.text, myName);
  if (message.edited && !message.deleted) meta.append(span("edited-mark", "edited"));
  li.replaceChildren(meta, body);
  const offered = !message.deleted && rights ? rights : { edit: false, delete: false };
  if (offered.edit || offered.delete) {
    const actions = document.createElement("div");
    actions.className = "actions";
    if (offered.edit) actions.append(button("edit", "Edit"));
    if (offered.delete) actions.append(button("delete", "Delete"));
    li.append(actions);
  }
  const classes = ["message"];
  if (message.mine) classes.push("mine");
  if (fromServer) classes.push("from-server");
  if (message.edited && !message.deleted) classes.push("edited");
  if (message.deleted) classes.push("deleted");
  if (mentioned) classes.push("mentions-me");
  li.className = classes.join(" ");
  setTime(li, message.ts);
  return li;
}
