// static/chat/mentions.js, and static/chat/message-element.js drawing one message into tiny
// fake elements: mentions as spans of text, "edited" and "message deleted" in place, and
// which buttons a message gets.
import { test } from "node:test";
import assert from "node:assert/strict";

import { mentionPieces, mentions } from "../../static/chat/mentions.js";

/** Just enough of the DOM for drawMessage: elements, text nodes, children, a selector by tag or class. */
class FakeText {
  constructor(text) {
    this.nodeType = 3;
    this.textContent = text;
  }
}

class FakeElement {
  constructor(tag) {
    this.nodeType = 1;
    this.tagName = tag.toUpperCase();
    this.className = "";
    this.childNodes = [];
    this.dataset = {};
    this.title = "";
  }
  get textContent() {
    return this.childNodes.map((node) => node.textContent).join("");
  }
  set textContent(text) {
    this.childNodes = text ? [new FakeText(String(text))] : [];
  }
  get innerHTML() {
    throw new Error("innerHTML is never used");
  }
  set innerHTML(html) {
    throw new Error("innerHTML is never used");
  }
  append(...nodes) {
    this.childNodes.push(...nodes);
  }
  replaceChildren(...nodes) {
    this.childNodes = nodes;
  }
  /** `tag` or `.class`, searched depth first. */
  querySelectorAll(selector) {
    const found = [];
    const matches = (el) =>
      selector.startsWith(".") ? el.className.split(" ").includes(selector.slice(1)) : el.tagName === selector.toUpperCase();
    const walk = (el) => {
      for (const child of el.childNodes) {
        if (child.nodeType !== 1) continue;
        if (matches(child)) found.push(child);
        walk(child);
      }
    };
    walk(this);
    return found;
  }
  querySelector(selector) {
    return this.querySelectorAll(selector)[0] || null;
  }
}

globalThis.document = {
  createElement: (tag) => new FakeElement(tag),
  createTextNode: (text) => new FakeText(text),
};
const { drawMessage, DELETED_TEXT } = await import("../../static/chat/message-element.js");

test("mentionPieces: @names cut out, the rest as text, joined back to the same text", () => {
  const cases = [
    ["hi @bob!", [{ text: "hi " }, { text: "@bob", name: "bob" }, { text: "!" }]],
    ["@alice", [{ text: "@alice", name: "alice" }]],
    ["mail bob@example.com", [{ text: "mail bob@example.com" }]],
    ["thanks @bob.", [{ text: "thanks " }, { text: "@bob", name: "bob" }, { text: "." }]],
    ["@j.doe+x-y_z, @a@b.c", [{ text: "@j.doe+x-y_z", name: "j.doe+x-y_z" }, { text: ", " }, { text: "@a@b.c", name: "a@b.c" }]],
    ["@ alone, @... and @", [{ text: "@ alone, @... and @" }]],
    ["(@zoë)", [{ text: "(" }, { text: "@zoë", name: "zoë" }, { text: ")" }]],
    ["", []],
  ];
  for (const [text, pieces] of cases) {
    assert.deepEqual(mentionPieces(text), pieces, text);
    assert.equal(mentionPieces(text).map((p) => p.text).join(""), text);
  }
});

test("mentions: exactly the reader's username", () => {
  const pieces = mentionPieces("ping @alice and @Bob");
  assert.equal(mentions(pieces, "alice"), true);
  assert.equal(mentions(pieces, "Bob"), true);
  assert.equal(mentions(pieces, "bob"), false);
  assert.equal(mentions(pieces, null), false);
  assert.equal(mentions(mentionPieces("alice"), "alice"), false);
});

const message = (fields) => ({ seq: 4, ts: 0, text: "hello", senderName: "bob", mine: false, ...fields });
const draw = (fields, options) => drawMessage(document.createElement("li"), message(fields), options);

test("a message's text with mentions as spans of text; markup stays text", () => {
  const li = draw({ text: "<b>hi</b> @alice @carol" }, { myName: "alice" });
  const body = li.querySelector(".text");
  assert.equal(body.textContent, "<b>hi</b> @alice @carol");
  assert.deepEqual(li.querySelectorAll(".mention").map((s) => s.textContent), ["@alice", "@carol"]);
  assert.equal(body.childNodes[0].nodeType, 3);
  assert.deepEqual(li.className.split(" "), ["message", "mentions-me"]);
  assert.equal(draw({ text: "hi @carol" }, { myName: "alice" }).className, "message");
});

test("edited and deleted in place; buttons as the rights say, none once deleted", () => {
  const edited = draw({ text: "new", edited: true, mine: true }, { rights: { edit: true, delete: true } });
  assert.deepEqual(edited.className.split(" "), ["message", "mine", "edited"]);
  assert.equal(edited.querySelector(".edited-mark").textContent, "edited");
  assert.equal(edited.querySelector(".text").textContent, "new");
  assert.deepEqual(edited.querySelectorAll("button").map((b) => [b.className, b.textContent]), [["edit", "Edit"], ["delete", "Delete"]]);

  const deleted = draw({ text: "", deleted: true, mine: true }, { myName: "alice", rights: { edit: true, delete: true } });
  assert.deepEqual(deleted.className.split(" "), ["message", "mine", "deleted"]);
  assert.equal(deleted.querySelector(".text").textContent, DELETED_TEXT);
  assert.equal(deleted.querySelectorAll("button").length, 0);
  assert.equal(deleted.querySelector(".edited-mark"), null);

  const moderated = draw({}, { rights: { edit: false, delete: true } });
  assert.deepEqual(moderated.querySelectorAll("button").map((b) => b.className), ["delete"]);
  assert.equal(draw({}, { rights: null }).querySelector(".actions"), null);
});

test("a message of the server: its label, never a sender; redrawing starts from scratch", () => {
  const li = draw({ senderName: null });
  assert.equal(li.querySelector(".sender"), null);
  assert.equal(li.querySelector(".server-label").textContent, "from the server");
  assert.ok(li.className.includes("from-server"));
  drawMessage(li, message({ text: "again" }));
  assert.equal(li.querySelectorAll(".text").length, 1);
  assert.equal(li.querySelector(".text").textContent, "again");
  assert.equal(li.querySelector(".sender").textContent, "bob");
});
