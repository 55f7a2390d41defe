// static/chat/person-actions.js without a browser: what follows a name in the "who is here"
// list, and the moderators' Mute / Ban toggles over a scripted API.
import { test } from "node:test";
import assert from "node:assert/strict";

class FakeElement {
  constructor(tag) {
    this.tagName = tag.toUpperCase();
    this.className = "";
    this.textContent = "";
    this.title = "";
    this.dataset = {};
    this.attributes = {};
    this.disabled = false;
    this.listeners = {};
  }
  setAttribute(name, value) {
    this.attributes[name] = String(value);
  }
  addEventListener(type, fn) {
    (this.listeners[type] ||= []).push(fn);
  }
  async click() {
    for (const fn of this.listeners.click || []) await fn({ type: "click" });
  }
}

globalThis.document = { createElement: (tag) => new FakeElement(tag) };
const { PersonActions, dmUrl } = await import("../../static/chat/person-actions.js");

function actions({ me = { id: "1" }, moderator = false, refuse = false } = {}) {
  const calls = [];
  const errors = [];
  const api = {
    setMuted: async (stream, id, on) => {
      calls.push(["mute", stream, id, on]);
      if (refuse) throw Object.assign(new Error("forbidden: no"), { code: "forbidden" });
    },
    setBanned: async (stream, id, on) => {
      calls.push(["ban", stream, id, on]);
    },
  };
  const people = new PersonActions({ stream: "room:a", me, moderator, api, onError: (text) => errors.push(text) });
  return { people, calls, errors };
}

const labels = (elements) => elements.map((el) => [el.className, el.dataset.label, el.attributes["aria-label"], el.textContent]);

test("a Message link for everyone but oneself, labelled without text; guests get nothing", () => {
  const { people } = actions();
  assert.deepEqual(people.elementsFor("1", "me"), []);
  const [link, ...rest] = people.elementsFor("2", "bob");
  assert.equal(rest.length, 0);
  assert.equal(link.tagName, "A");
  assert.equal(link.href, "/dm/2/");
  assert.deepEqual(labels([link]), [["person-action message-person", "Message", "Message", ""]]);
  assert.equal(link.title, "Message bob");
  assert.deepEqual(actions({ me: null }).people.elementsFor("2", "bob"), []);
  assert.equal(dmUrl("a/b"), "/dm/a%2Fb/");
});

test("moderators toggle Mute and Ban; the labels follow, across redraws of the list", async () => {
  const { people, calls } = actions({ moderator: true });
  const [, mute, ban] = people.elementsFor("2", "bob");
  assert.deepEqual(labels([mute, ban]).map((l) => l[1]), ["Mute", "Ban"]);
  await mute.click();
  assert.equal(mute.dataset.label, "Unmute");
  assert.equal(mute.attributes["aria-label"], "Unmute");
  await ban.click();
  const [, muteAgain, banAgain] = people.elementsFor("2", "bob"); // the list was drawn anew
  assert.deepEqual([muteAgain.dataset.label, banAgain.dataset.label], ["Unmute", "Unban"]);
  await muteAgain.click();
  assert.equal(muteAgain.dataset.label, "Mute");
  assert.deepEqual(calls, [["mute", "room:a", "2", true], ["ban", "room:a", "2", true], ["mute", "room:a", "2", false]]);
});

test("a refused toggle keeps its label and says why", async () => {
  const { people, errors } = actions({ moderator: true, refuse: true });
  const [, mute] = people.elementsFor("2", "bob");
  await mute.click();
  assert.equal(mute.dataset.label, "Mute");
  assert.equal(mute.disabled, false);
  assert.deepEqual(errors, ["Mute bob failed: forbidden"]);
});
