// static/chat/corrections.js and its folding in static/chat/model.js and history.js: edits
// and deletions in any order, live, on replay and with older pages, drawn into a view that
// only records what it is told.
import { test } from "node:test";
import assert from "node:assert/strict";

import { Corrections, correctionOf, rightsOf } from "../../static/chat/corrections.js";
import { RoomModel } from "../../static/chat/model.js";
import { RoomHistory } from "../../static/chat/history.js";

const ALICE = { id: "1", name: "alice" };
const BOB = { id: "2", name: "bob" };
const frame = (seq, data, sender = BOB, epoch = "e1") => ({ stream: "room:a", seq, epoch, ts: seq * 1000, data, sender });
const text = (seq, sender = BOB) => frame(seq, { text: `m${seq}` }, sender);
const edit = (seq, target, body, sender = BOB) => frame(seq, { edit: target, text: body }, sender);
const del = (seq, target, sender = BOB) => frame(seq, { delete: target }, sender);

/** What a page shows of each message, the way the view would draw it. */
const looks = (model) =>
  model.seqs.map((seq) => model.drawn(seq)).filter(Boolean).map((m) => [m.seq, m.text, Boolean(m.edited), Boolean(m.deleted)]);

test("correctionOf: edits and deletes of a seq; anything else is a message", () => {
  assert.deepEqual(correctionOf({ edit: 3, text: "new" }), { kind: "edit", target: 3, text: "new" });
  assert.deepEqual(correctionOf({ delete: 3 }), { kind: "delete", target: 3 });
  assert.deepEqual(correctionOf({ delete: 3, text: "x" }), { kind: "delete", target: 3 });
  for (const data of [{ text: "hi" }, { edit: 3 }, { edit: "3", text: "x" }, { edit: 0, text: "x" }, { delete: 1.5 }, [1], null, "x", 7]) {
    assert.equal(correctionOf(data), null, JSON.stringify(data));
  }
});

test("Corrections: the newest edit by seq wins, a delete wins over any edit, whatever the order", () => {
  const late = new Corrections();
  assert.equal(late.note(9, { kind: "edit", target: 2, text: "second" }), true);
  assert.equal(late.note(5, { kind: "edit", target: 2, text: "first" }), false); // older, arrived later
  assert.deepEqual(late.of(2), { deleted: false, text: "second" });
  assert.equal(late.note(7, { kind: "delete", target: 2 }), true);
  assert.equal(late.note(7, { kind: "delete", target: 2 }), false);
  assert.equal(late.note(12, { kind: "edit", target: 2, text: "after" }), false); // still deleted
  assert.deepEqual(late.of(2), { deleted: true, text: "after" });
  assert.equal(late.of(3), null);
  // A correction of itself or of a later seq is no correction (the server refuses those).
  assert.equal(late.note(4, { kind: "delete", target: 4 }), false);
  assert.equal(late.note(4, { kind: "edit", target: 6, text: "x" }), false);
  assert.equal(late.of(4), null);
  late.clear();
  assert.equal(late.size, 0);
});

test("rightsOf: own messages may be edited and deleted, a moderator deletes any; nothing once deleted", () => {
  const mine = { mine: true };
  const theirs = { mine: false };
  assert.deepEqual(rightsOf(mine), { edit: true, delete: true });
  assert.deepEqual(rightsOf(theirs), { edit: false, delete: false });
  assert.deepEqual(rightsOf(theirs, { moderator: true }), { edit: false, delete: true });
  assert.deepEqual(rightsOf({ mine: true, deleted: true }, { moderator: true }), { edit: false, delete: false });
  assert.deepEqual(rightsOf({ mine: false, raw: true }, { moderator: true }), { edit: false, delete: false });
});

test("the model keeps corrections by seq, never as messages: no hole where one stands", () => {
  const model = new RoomModel({ me: ALICE });
  model.setEpoch("e1");
  for (const msg of [text(1), text(2), edit(3, 1, "changed"), text(4)]) model.add(msg);
  assert.deepEqual(model.seqs, [1, 2, 3, 4]);
  assert.deepEqual(model.holes(), []);
  assert.equal(model.has(3), true);
  assert.equal(model.drawn(3), null);
  assert.equal(model.get(3).correction.kind, "edit");
  // Placement skips the correction: a message at 2.5 would go before 4's element.
  assert.equal(model.after(2), 4);
  assert.equal(model.after(3), 4);
  assert.deepEqual(looks(model), [[1, "changed", true, false], [2, "m2", false, false], [4, "m4", false, false]]);
  assert.equal(model.update(edit(3, 1, "changed")), null); // a replayed correction changes nothing
  assert.equal(model.newest(), 4);
});

test("folding in any order gives the same page", () => {
  const messages = [
    text(1), text(2, ALICE), edit(3, 2, "two, edited", ALICE), text(4), del(5, 1),
    edit(6, 2, "two, again", ALICE), edit(7, 4, "four'"), del(8, 4), edit(9, 1, "too late"), text(10), { ...frame(11, { other: 1 }) },
  ];
  const expected = [
    [1, "", false, true],
    [2, "two, again", true, false],
    [4, "", false, true],
    [10, "m10", false, false],
    [11, '{"other":1}', false, false],
  ];
  // Every order a seeded shuffle gives, and the two extremes.
  let seed = 7;
  const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  const orders = [messages, [...messages].reverse()];
  for (let i = 0; i < 200; i += 1) orders.push([...messages].sort(() => random() - 0.5));
  for (const order of orders) {
    const model = new RoomModel({ me: ALICE });
    model.setEpoch("e1");
    for (const msg of order) model.add(msg);
    assert.deepEqual(looks(model), expected, order.map((m) => m.seq).join(","));
    assert.deepEqual(model.holes(), []);
  }
});

test("an own message confirmed by its ack gets a correction that came before", () => {
  const model = new RoomModel({ me: ALICE });
  model.setEpoch("e1");
  const entry = model.addPending("hello");
  model.add(del(6, 5, { id: "9", name: "mod" })); // a moderator was quick
  const confirmed = model.confirm(entry.key, { seq: 5, epoch: "e1" });
  assert.equal(confirmed.deleted, true);
  assert.equal(confirmed.text, "");
});

test("a new epoch forgets the corrections of the old one", () => {
  const model = new RoomModel();
  model.setEpoch("e1");
  model.add(edit(2, 1, "old epoch's"));
  model.setEpoch("e2");
  model.add({ ...text(1), epoch: "e2" });
  assert.deepEqual(looks(model), [[1, "m1", false, false]]);
});

/** A view that records what it is told to draw. */
class RecordingView {
  constructor() {
    this.placed = [];
    this.redrawn = [];
    this.gapDraws = 0;
  }
  place(message, next) {
    this.placed.push([message.seq, next]);
  }
  redraw(message) {
    this.redrawn.push([message.seq, message.text, Boolean(message.deleted)]);
  }
  update() {}
  remove() {}
  clear() {}
  clearGaps() {}
  nextToGap() {
    return false;
  }
  drawGaps(gaps) {
    this.gaps = gaps;
    this.gapDraws += 1;
  }
  showBeginning() {}
  showNotice() {}
  setOlderLoading() {}
  keepingPlace(change) {
    change();
  }
  nearBottom() {
    return false;
  }
  scrollToBottom() {}
}

test("live: a correction redraws its target and is never placed; replay of it changes nothing", () => {
  const model = new RoomModel({ me: ALICE });
  const view = new RecordingView();
  const history = new RoomHistory({ model, view, stream: "room:a", history: 50, read: async () => ({ messages: [] }) });
  history.forgetEpoch("e1");
  assert.equal(history.live(text(1)), true);
  assert.equal(history.live(edit(2, 1, "fixed")), true);
  assert.equal(history.live(text(3)), true);
  assert.deepEqual(view.placed, [[1, null], [3, null]]);
  assert.deepEqual(view.redrawn, [[1, "fixed", false]]);
  assert.equal(history.live(edit(2, 1, "fixed")), false); // the frame after our own ack
  assert.deepEqual(view.redrawn, [[1, "fixed", false]]);
  history.live(del(4, 3));
  assert.deepEqual(view.redrawn, [[1, "fixed", false], [3, "", true]]);
});

test("older pages: an edit seen live applies to its target when the page bringing it loads", async () => {
  const model = new RoomModel({ me: ALICE });
  const view = new RecordingView();
  const older = { epoch: "e1", seq: 12, messages: [text(8), edit(9, 8, "eight'"), text(10)] };
  const history = new RoomHistory({ model, view, stream: "room:a", history: 50, read: async () => older });
  history.forgetEpoch("e1");
  history.subscribed({ epoch: "e1", seq: 12, recovered: true });
  history.live(edit(11, 10, "ten'"));
  history.live(text(12));
  assert.deepEqual(view.placed, [[12, null]]);
  assert.deepEqual(view.redrawn, []); // 10 is not loaded yet
  await history.loadOlder();
  assert.deepEqual(view.placed.slice(1), [[8, 12], [10, 12]]);
  assert.deepEqual(looks(model), [[8, "eight'", true, false], [10, "ten'", true, false], [12, "m12", false, false]]);
  assert.deepEqual(model.holes(), []);
  clearTimeout(history.holePause);
});

test("a correction that fills a hole redraws the gap marks", () => {
  const model = new RoomModel();
  const view = new RecordingView();
  const history = new RoomHistory({ model, view, stream: "room:a", history: 50, read: async () => ({ messages: [] }) });
  history.forgetEpoch("e1");
  history.insertOlder([text(1), text(3)]);
  assert.deepEqual(view.gaps.map((g) => g.before), [3]);
  history.live(edit(2, 1, "one'"));
  assert.deepEqual(view.gaps, []);
});
