// static/feed/model.js: the feed's notifications and read position, no DOM.
import { test } from "node:test";
import assert from "node:assert/strict";

import { FeedModel, KEPT, notificationOf, readMarkerOf, safeUrl } from "../../static/feed/model.js";

const note = (seq, epoch = "e1", extra = {}) => ({ stream: "user:1", seq, epoch, ts: seq * 1000, data: { title: `t${seq}`, ...extra }, sender: null });
const marker = (seq, epoch = "e1", at = 99) => ({ stream: "user:1", seq: at, epoch, ts: 0, data: { read: { epoch, seq } } });

test("safeUrl keeps absolute http(s) URLs only", () => {
  assert.equal(safeUrl("https://example.com/a?b"), "https://example.com/a?b");
  assert.equal(safeUrl("http://example.com"), "http://example.com/");
  for (const bad of ["javascript:alert(1)", "data:text/html,x", "/relative", "", null, 3, {}]) assert.equal(safeUrl(bad), null);
});

test("notificationOf checks the data field by field", () => {
  assert.deepEqual(notificationOf(note(3, "e1", { body: "b", url: "javascript:x" })), {
    seq: 3,
    epoch: "e1",
    ts: 3000,
    title: "t3",
    body: "b",
    url: null,
  });
  assert.equal(notificationOf({ seq: 1, epoch: "e", data: { title: "" } }), null);
  assert.equal(notificationOf({ seq: 1, epoch: "e", data: ["title"] }), null);
  assert.equal(notificationOf({ seq: 1, epoch: "e", data: "title" }), null);
  assert.equal(notificationOf({ seq: 1, epoch: "e", data: { title: "x", body: 5 } }).body, "");
});

test("readMarkerOf", () => {
  assert.deepEqual(readMarkerOf({ read: { epoch: "e1", seq: 4 } }), { epoch: "e1", seq: 4 });
  for (const bad of [{ read: { epoch: "e1", seq: -1 } }, { read: { epoch: 1, seq: 1 } }, { read: { epoch: "e", seq: 1.5 } }, null, "read"]) {
    assert.equal(readMarkerOf(bad), null);
  }
});

test("apply: newest first, once per seq, unread counted from the read position", () => {
  const model = new FeedModel();
  assert.equal(model.apply(note(1)), true);
  assert.equal(model.apply(note(3)), true);
  assert.equal(model.apply(note(2)), true);
  assert.equal(model.apply(note(2)), false);
  assert.equal(model.apply({ seq: 4, epoch: "e1", data: { text: "not a notification" } }), false);
  assert.deepEqual(model.items.map((n) => n.seq), [3, 2, 1]);
  assert.equal(model.unread, 3);
  assert.equal(model.apply(marker(2)), true);
  assert.equal(model.unread, 1);
  assert.equal(model.apply(marker(1)), false); // never backwards
  assert.equal(model.isUnread(model.items[0]), true);
  assert.equal(model.isUnread(model.items[1]), false);
});

test("at most KEPT notifications are kept, the newest", () => {
  const model = new FeedModel();
  for (let seq = 1; seq <= KEPT + 20; seq += 1) model.apply(note(seq));
  assert.equal(model.items.length, KEPT);
  assert.equal(model.items[0].seq, KEPT + 20);
  assert.equal(model.items[KEPT - 1].seq, 21);
});

test("a read position of a lost epoch does not replace the current one", () => {
  const model = new FeedModel();
  assert.equal(model.setRead({ epoch: "old", seq: 50 }), true); // no epoch known yet: taken
  model.setEpoch("new");
  assert.equal(model.setRead({ epoch: "new", seq: 2 }), true);
  assert.equal(model.setRead({ epoch: "old", seq: 90 }), false);
  assert.deepEqual(model.read, { epoch: "new", seq: 2 });
  assert.equal(model.setRead({ epoch: null, seq: 0 }), false);
  assert.equal(model.setRead(null), false);
});

test("merge joins a page of the subscription's epoch and drops other epochs' items", () => {
  const model = new FeedModel();
  model.setEpoch("e1");
  model.apply(note(5));
  model.apply(note(6));
  assert.equal(model.merge({ epoch: "e0", messages: [note(1, "e0")] }), false); // not ours
  assert.equal(model.merge(null), false);
  assert.equal(model.merge({ epoch: "e1", messages: [note(4), note(5), marker(4)] }), true);
  assert.deepEqual(model.items.map((n) => n.seq), [6, 5, 4]);
  assert.equal(model.unread, 2);
  // The stream moved on to e2: e1's numbers mean nothing any more.
  model.apply(note(1, "e2"));
  assert.equal(model.epoch, "e2");
  assert.equal(model.merge({ epoch: "e2", messages: [note(2, "e2")] }), true);
  assert.deepEqual(model.items.map((n) => `${n.epoch}:${n.seq}`), ["e2:2", "e2:1"]);
});

test("merge before any epoch is known takes nothing", () => {
  const model = new FeedModel();
  assert.equal(model.merge({ epoch: "e1", messages: [note(1)] }), false);
  assert.equal(model.items.length, 0);
});
