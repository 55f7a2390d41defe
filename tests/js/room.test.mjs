// static/chat/model.js and static/chat/history.js without a browser: what a room page
// shows by seq, its own pending publishes, holes, and paging over a scripted HTTP read
// drawn into a view that only records what it is told.
import { test } from "node:test";
import assert from "node:assert/strict";

import { RoomModel, holeSize, textOf } from "../../static/chat/model.js";
import { HOLE_PAGE, OLDER_PAGE, RETRY_TRIES, RoomHistory } from "../../static/chat/history.js";

const ALICE = { id: "1", name: "alice" };
const msg = (seq, epoch = "e1", sender = { id: "2", name: "bob" }) => ({ stream: "room:a", seq, epoch, ts: seq * 1000, data: { text: `m${seq}` }, sender });

test("textOf: chat text, anything else as JSON text", () => {
  assert.equal(textOf({ text: "hi" }), "hi");
  assert.equal(textOf({ other: 1 }), '{"other":1}');
  assert.equal(textOf(null), "null");
});

test("messages by seq, in order, once each; mine and the server's told apart", () => {
  const model = new RoomModel({ me: ALICE });
  model.setEpoch("e1");
  for (const seq of [5, 9, 7, 1]) assert.ok(model.add(msg(seq)));
  assert.equal(model.add(msg(7)), null);
  assert.deepEqual(model.seqs, [1, 5, 7, 9]);
  assert.equal(model.size, 4);
  assert.deepEqual([model.oldest(), model.newest()], [1, 9]);
  assert.deepEqual([model.after(5), model.after(9), model.after(0)], [7, null, 1]);
  assert.deepEqual([model.below(5), model.below(1), model.below(100)], [1, null, 9]);
  assert.equal(model.add(msg(10, "e1", ALICE)).mine, true);
  const fromServer = model.add(msg(11, "e1", null));
  assert.deepEqual([fromServer.senderName, fromServer.mine], [null, false]);
  assert.equal(model.get(9).text, "m9");
});

test("a new epoch forgets the shown messages but not the pending ones", () => {
  const model = new RoomModel({ me: ALICE });
  assert.equal(model.setEpoch("e1"), true);
  model.add(msg(1));
  const entry = model.addPending("hello", 123);
  assert.equal(model.setEpoch("e1"), false);
  assert.equal(model.setEpoch("e2"), true);
  assert.equal(model.size, 0);
  assert.equal(model.pending.get(entry.key).text, "hello");
});

test("holes: between shown messages, the highest first, and below any seq", () => {
  const model = new RoomModel();
  model.setEpoch("e1");
  for (const seq of [1, 2, 5, 6, 100]) model.add(msg(seq));
  assert.deepEqual(model.holes(), [{ above: 100, below: 6 }, { above: 5, below: 2 }]);
  assert.deepEqual(model.holes().map(holeSize), [93, 2]);
  assert.deepEqual(model.holeBelow(5), { above: 5, below: 2 });
  assert.equal(model.holeBelow(2), null);
  assert.deepEqual(model.holeBelow(50), { above: 50, below: 6 }); // `above` need not be shown
  assert.deepEqual(model.dropBelow(6), [1, 2, 5]);
  assert.deepEqual(model.seqs, [6, 100]);
  assert.equal(model.has(5), false);
});

test("fresh: a page's new messages of this epoch, ascending, once each", () => {
  const model = new RoomModel();
  model.setEpoch("e1");
  model.add(msg(3));
  const page = [msg(4), msg(2), msg(3), msg(2), msg(1, "e0"), { ...msg(5), seq: "5" }];
  assert.deepEqual(model.fresh(page).map((m) => m.seq), [2, 4]);
});

test("own publishes: pending, then confirmed at the ack's seq, or dropped when the frame came first", () => {
  const model = new RoomModel({ me: ALICE });
  model.setEpoch("e1");
  const first = model.addPending("one", 50);
  const second = model.addPending("two", 60);
  assert.deepEqual([...model.pending.keys()], [first.key, second.key]);
  const confirmed = model.confirm(first.key, { seq: 4, epoch: "e1" });
  assert.deepEqual(confirmed, { seq: 4, epoch: "e1", ts: 50, text: "one", senderName: "alice", senderId: "1", mine: true });
  // The message frame then brings the server's time.
  assert.equal(model.update({ ...msg(4, "e1", ALICE), ts: 4444 }).ts, 4444);
  model.add(msg(5, "e1", ALICE));
  assert.equal(model.confirm(second.key, { seq: 5, epoch: "e1" }), null);
  assert.equal(model.pending.size, 0);
  const refused = model.addPending("three");
  assert.equal(model.fail(refused.key, "forbidden").state, "failed");
  assert.equal(model.pending.get(refused.key).error, "forbidden");
  assert.equal(model.confirm(12345, { seq: 9, epoch: "e1" }), null);
});

/** A view that records what it is told to draw. */
class RecordingView {
  constructor() {
    this.placed = [];
    this.gaps = [];
    this.beginning = false;
    this.notice = "";
    this.loading = [];
  }
  place(message, next) {
    this.placed.push([message.seq, next]);
  }
  update() {}
  remove(seqs) {
    this.removed = seqs;
  }
  clear() {
    this.cleared = (this.cleared || 0) + 1;
  }
  clearGaps() {}
  nextToGap() {
    return false;
  }
  drawGaps(gaps) {
    this.gaps = gaps;
  }
  showBeginning(reached) {
    this.beginning = reached;
  }
  showNotice(text) {
    this.notice = text;
  }
  setOlderLoading(loading) {
    this.loading.push(loading);
  }
  keepingPlace(change) {
    change();
  }
  nearBottom() {
    return false;
  }
  scrollToBottom() {}
}

function pager(answer) {
  const model = new RoomModel({ me: ALICE });
  const view = new RecordingView();
  const asked = [];
  const read = async (stream, query) => {
    asked.push(query);
    return answer(query);
  };
  const history = new RoomHistory({ model, view, stream: "room:a", history: 50, read });
  return { model, view, history, asked };
}

const page = (epoch, from, to) => ({ epoch, seq: 1000, messages: Array.from({ length: to - from + 1 }, (_, i) => msg(from + i, epoch)) });

test("load older: the page above the oldest shown, placed in order, the beginning at seq 1", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const { model, view, history, asked } = pager((q) => page("e1", Math.max(1, q.before - q.limit), q.before - 1));
  history.forgetEpoch("e1");
  history.subscribed({ epoch: "e1", seq: 60, recovered: true });
  for (const seq of [58, 59, 60]) history.live(msg(seq));
  await history.loadOlder();
  assert.deepEqual(asked[0], { before: 58, epoch: "e1", limit: OLDER_PAGE });
  assert.deepEqual(model.seqs.slice(0, 3), [8, 9, 10]);
  assert.deepEqual(view.placed.slice(3, 5), [[8, 58], [9, 58]]);
  assert.deepEqual(view.loading, [true, false]);
  assert.equal(view.beginning, false);
  await history.loadOlder();
  assert.equal(model.oldest(), 1);
  assert.equal(view.beginning, true);
  await history.loadOlder(); // at the beginning: nothing more is asked
  assert.equal(asked.length, 2);
});

test("an empty page above seq 1: marked as retrying, asked again with growing waits", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const { model, view, history, asked } = pager(() => ({ epoch: "e1", seq: 80, messages: [] }));
  history.forgetEpoch("e1");
  history.subscribed({ epoch: "e1", seq: 80, recovered: true });
  history.live(msg(41));
  await history.loadOlder();
  assert.deepEqual(view.gaps, [{ kind: "older", before: 41, missing: 40, retrying: true }]);
  await history.loadOlder(); // a scroll does not ask again for the same range
  assert.equal(asked.length, 1);
  for (let n = 1; n < RETRY_TRIES + 2; n += 1) {
    t.mock.timers.tick(40_000);
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.equal(asked.length, 1 + RETRY_TRIES);
  assert.deepEqual(view.gaps, [{ kind: "older", before: 41, missing: 40, retrying: false }]);
  assert.equal(model.size, 1);
});

test("holes: a small one is asked for with before = the seq above it; a wide one waits", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const { model, view, history, asked } = pager((q) => page("e1", q.before - q.limit, q.before - 1));
  history.forgetEpoch("e1");
  for (const seq of [1, 10, 11, 200]) history.live(msg(seq));
  history.markGaps();
  assert.deepEqual(view.gaps.map((g) => [g.kind, g.before, g.missing]), [["hole", 10, 8], ["wide", 200, 188]]);
  await history.fillHoles();
  assert.deepEqual(asked, [{ before: 10, epoch: "e1", limit: 8 }]);
  assert.deepEqual(model.seqs.slice(0, 11), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  assert.deepEqual(view.gaps.map((g) => g.kind), ["wide"]);
  // The reader's "Load more" on the wide one: its newest page.
  await history.fillHoles({ byHand: true, hole: view.gaps[0].hole });
  assert.deepEqual(asked[1], { before: 200, epoch: "e1", limit: HOLE_PAGE });
  assert.equal(model.below(200), 199);
});

test("a reload after recovered: false drops what lies more than a page below it", async () => {
  const { model, view, history } = pager(() => page("e1", 500, 549));
  history.forgetEpoch("e1");
  for (const seq of [10, 11, 12]) history.live(msg(seq));
  await history.reload();
  assert.deepEqual(view.removed, [10, 11, 12]);
  assert.equal(model.oldest(), 500);
  assert.equal(model.size, 50);
  assert.equal(view.notice, "");
});

test("a page of an epoch that is gone is not shown", async () => {
  let resolve;
  const { model, history } = pager(() => new Promise((r) => (resolve = r)));
  history.forgetEpoch("e1");
  history.live(msg(30));
  const loading = history.loadOlder();
  history.live(msg(1, "e2")); // the stream restarted meanwhile
  resolve(page("e1", 1, 29));
  await loading;
  assert.deepEqual(model.seqs, [1]);
  assert.equal(model.epoch, "e2");
});
