// static/chat/presence.js without a browser: the "who is here" list, its versions and the
// count of a big room, drawn into tiny fake elements; typing signals.
import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";

class FakeElement {
  constructor(tag = "div") {
    this.tagName = tag.toUpperCase();
    this.textContent = "";
    this.hidden = false;
    this.className = "";
    this.title = "";
    this.dataset = {};
    this.children = [];
    this.listeners = {};
  }

  replaceChildren(...children) {
    this.children = children;
  }

  addEventListener(type, fn) {
    (this.listeners[type] ||= []).push(fn);
  }

  dispatch(type) {
    for (const fn of this.listeners[type] || []) fn({ type });
  }
}

globalThis.document = { createElement: (tag) => new FakeElement(tag) };
const { PresenceList, TypingIndicator, signalTyping, REQUERY_LEAST, REQUERY_SPREAD, TYPING_SHOWN_FOR } = await import(
  "../../static/chat/presence.js"
);

/** The client's events and `send`, nothing more. */
class FakeClient {
  constructor() {
    this.handlers = {};
    this.sent = [];
    this.connected = true;
  }

  on(event, fn) {
    (this.handlers[event] ||= []).push(fn);
    return () => {};
  }

  emit(event, payload) {
    for (const fn of this.handlers[event] || []) fn(payload);
  }

  send(frame) {
    if (!this.connected) return false;
    this.sent.push(frame);
    return true;
  }
}

let client, list, count, presence;
const STREAM = "room:lobby";
const names = () => list.children.map((li) => li.textContent);
const frame = (body) => client.emit("presence", { type: "presence", stream: STREAM, ...body });

beforeEach(() => {
  client = new FakeClient();
  list = new FakeElement("ul");
  count = new FakeElement("span");
  presence = new PresenceList({ client, stream: STREAM, list, count, me: { id: "1" } });
});

test("the list as the server sends it, sorted by name, the page's own person marked", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  presence.subscribed({ first: true });
  assert.deepEqual(client.sent, [{ type: "presence", stream: STREAM }]);
  frame({ v: 5, members: [{ id: "2", name: "bob" }, { id: "1", name: "alice" }, { name: "no id" }] });
  assert.deepEqual(names(), ["alice", "bob"]);
  assert.equal(count.textContent, "2 here");
  assert.equal(list.children[0].className, "who-item me");
  assert.equal(list.children[0].title, "you");
  assert.equal(list.children[1].dataset.userId, "2");
  assert.equal(list.hidden, false);
  assert.equal(presence.queries, 1);
});

test("changes apply only when newer than the list and than what is known of that person", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  presence.refresh();
  frame({ v: 10, members: [{ id: "1", name: "alice" }] });
  frame({ joined: [{ id: "2", name: "bob", v: 9 }] }); // already in the list's version: not there
  assert.deepEqual(names(), ["alice"]);
  frame({ joined: [{ id: "2", name: "bob", v: 11 }] });
  assert.deepEqual(names(), ["alice", "bob"]);
  frame({ left: [{ id: "2", name: "bob", v: 11 }] }); // same version: counted already
  assert.deepEqual(names(), ["alice", "bob"]);
  frame({ left: [{ id: "2", name: "bob", v: 13 }], joined: [{ id: "3", name: "carol", v: 12 }] });
  assert.deepEqual(names(), ["alice", "carol"]);
  frame({ joined: [{ id: "2", name: "bob", v: 12 }] }); // older than bob's leave
  assert.deepEqual(names(), ["alice", "carol"]);
  frame({ joined: [{ id: "4", name: "dan" }] }); // no version: ignored
  frame({ joined: [{ id: "4", name: "dan", v: 14 }], left: "nonsense" });
  assert.deepEqual(names(), ["alice", "carol", "dan"]);
  assert.equal(count.textContent, "3 here");
  // A frame of another stream, or of a shape the page does not know, changes nothing.
  client.emit("presence", { type: "presence", stream: "room:other", members: [] });
  frame({ something: true });
  assert.deepEqual(names(), ["alice", "carol", "dan"]);
});

test("a room past the member cap shows the count from occupancy frames", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  presence.refresh();
  frame({ v: 3, total: 1500, members: [{ id: "1", name: "alice" }] });
  assert.equal(presence.big, true);
  assert.equal(list.hidden, true);
  assert.deepEqual(list.children, []);
  assert.equal(count.textContent, "1,500 here");
  client.emit("occupancy", { type: "occupancy", stream: STREAM, users: 1234 });
  assert.equal(count.textContent, "1,234 here");
  client.emit("occupancy", { type: "occupancy", stream: STREAM, users: "many" });
  assert.equal(count.textContent, "1,234 here");

  // Changes mean the room is under the cap again: the list is asked for anew, later.
  const sentBefore = client.sent.length;
  frame({ joined: [{ id: "2", name: "bob", v: 4 }] });
  assert.equal(presence.big, false);
  frame({ v: 4, members: [{ id: "1", name: "alice" }, { id: "2", name: "bob" }] }); // the answer to the first query
  t.mock.timers.tick(REQUERY_LEAST + REQUERY_SPREAD);
  assert.equal(client.sent.length, sentBefore + 1);
});

test("a listed room ignores occupancy", () => {
  frame({ v: 1, members: [{ id: "1", name: "alice" }] });
  client.emit("occupancy", { type: "occupancy", stream: STREAM, users: 40 });
  assert.equal(count.textContent, "1 here");
});

test("a later subscribe asks after a random wait; a lost answer is asked for again", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  presence.subscribed({ first: false });
  assert.equal(client.sent.length, 0);
  t.mock.timers.tick(REQUERY_LEAST + REQUERY_SPREAD);
  assert.equal(client.sent.length, 1);
  t.mock.timers.tick(10_000); // no answer: lost
  t.mock.timers.tick(REQUERY_LEAST + REQUERY_SPREAD);
  assert.equal(client.sent.length, 2);
  frame({ v: 1, members: [] });
  t.mock.timers.tick(60_000);
  assert.equal(client.sent.length, 2); // answered: nothing more
});

test("a refused query is asked again after the server's retry_after", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  presence.refresh();
  client.emit("error", { code: "rate_limited", frame: { stream: STREAM, retry_after: 5 } });
  t.mock.timers.tick(4_999);
  assert.equal(client.sent.length, 1);
  t.mock.timers.tick(REQUERY_SPREAD + 1);
  assert.equal(client.sent.length, 2);
});

test("not connected: no query is counted", () => {
  client.connected = false;
  presence.refresh();
  assert.equal(presence.queries, 0);
});

test("typing: shown for a while per person, never for oneself, gone when the message comes", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const element = new FakeElement();
  const typing = new TypingIndicator({ client, stream: STREAM, element, me: { id: "1" } });
  const signal = (id, name) => client.emit("typing", { type: "typing", stream: STREAM, user: { id, name } });
  signal("1", "alice");
  assert.equal(element.textContent, "");
  signal("2", "bob");
  assert.equal(element.textContent, "bob is typing…");
  assert.equal(element.hidden, false);
  signal("3", "carol");
  assert.equal(element.textContent, "bob and carol are typing…");
  signal("4", "dan");
  assert.equal(element.textContent, "Several people are typing…");
  typing.stopped("4");
  typing.stopped("3");
  t.mock.timers.tick(TYPING_SHOWN_FOR);
  assert.equal(element.textContent, "");
  assert.equal(element.hidden, true);
});

test("signalTyping sends at most every 2 s while there is text", (t) => {
  const input = new FakeElement("input");
  input.value = "";
  let now = 0;
  t.mock.method(performance, "now", () => now);
  const sent = signalTyping({ client, stream: STREAM, input });
  input.dispatch("input");
  assert.equal(client.sent.length, 0); // nothing written yet
  input.value = "h";
  input.dispatch("input");
  now = 1_000;
  input.dispatch("input");
  assert.equal(client.sent.length, 1);
  now = 2_000;
  input.dispatch("input");
  assert.equal(client.sent.length, 2);
  sent(); // the message went: the next keystroke signals again
  now = 2_100;
  input.dispatch("input");
  assert.deepEqual(client.sent.at(-1), { type: "typing", stream: STREAM });
  assert.equal(client.sent.length, 3);
});
