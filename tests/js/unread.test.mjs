// static/chat/unread.js: the room list's badges from the server's counts, new messages and
// `read` frames.
import { test } from "node:test";
import assert from "node:assert/strict";

import { UnreadCounts } from "../../static/chat/unread.js";

const ME = "1";
const msg = (stream, seq, data = { text: `m${seq}` }, sender = { id: "2", name: "bob" }, epoch = "e1") => ({ stream, seq, epoch, ts: 0, data, sender });

test("the server's count at load, then one more per chat message of someone else", () => {
  const counts = new UnreadCounts({ me: ME, initial: { "room:a": 2, "dm:1.2": 0 } });
  assert.equal(counts.unread("room:a"), 2);
  assert.equal(counts.subscribed("room:a", { epoch: "e1", seq: 10 }), 2);
  assert.equal(counts.message(msg("room:a", 11)), 3);
  assert.equal(counts.message(msg("room:a", 12, { text: "mine" }, { id: ME, name: "me" })), 3);
  assert.equal(counts.message(msg("room:a", 13, { edit: 11, text: "fix" })), 3);
  assert.equal(counts.message(msg("room:a", 14, { delete: 11 })), 3);
  assert.equal(counts.message(msg("room:a", 15, { score: 1 }, null)), 3);
  assert.equal(counts.message(msg("room:a", 16, { text: "from the server" }, null)), 4);
  assert.equal(counts.message(msg("room:zzz", 1)), null); // not listed
  assert.equal(counts.unread("dm:1.2"), 0);
});

test("a read frame: what lies after the position, from the subscribed seq or the latest message", () => {
  const counts = new UnreadCounts({ me: ME, initial: { "room:a": 5, "group:g": 3 } });
  counts.subscribed("room:a", { epoch: "e1", seq: 20 });
  assert.equal(counts.read({ stream: "room:a", epoch: "e1", seq: 18 }), 2);
  assert.equal(counts.read({ stream: "room:a", epoch: "e1", seq: 20 }), 0);
  counts.message(msg("room:a", 21));
  counts.message(msg("room:a", 22));
  assert.equal(counts.unread("room:a"), 2);
  assert.equal(counts.read({ stream: "room:a", epoch: "e1", seq: 21 }), 1);
  assert.equal(counts.read({ stream: "room:a", epoch: "e1", seq: 99 }), 0); // never below zero
  // A position of another epoch says nothing of this one's seqs.
  assert.equal(counts.read({ stream: "room:a", epoch: "e0", seq: 1 }), null);
  assert.equal(counts.unread("room:a"), 0);
  assert.equal(counts.read({ stream: "nope:x", epoch: "e1", seq: 1 }), null);
  // Before `subscribed`: all read up to anything we know of.
  assert.equal(counts.read({ stream: "group:g", epoch: "e9", seq: 0 }), 0);
});

test("a new epoch starts the latest seq over; reset takes the server's count", () => {
  const counts = new UnreadCounts({ me: ME, initial: { "room:a": 0 } });
  counts.subscribed("room:a", { epoch: "e1", seq: 500 });
  counts.message(msg("room:a", 3, undefined, undefined, "e2"));
  assert.equal(counts.read({ stream: "room:a", epoch: "e2", seq: 1 }), 2);
  assert.equal(counts.reset("room:a", 7), 7);
  assert.equal(counts.reset("room:b", 7), null);
});
