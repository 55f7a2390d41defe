// static/chat/read.js and static/chat/api.js: the read position sent debounced and never
// backwards; the CSRF token and the path of a stream.
import { test } from "node:test";
import assert from "node:assert/strict";

import { READ_DEBOUNCE, ReadTracker, isAhead } from "../../static/chat/read.js";
import { csrfToken, streamSegment } from "../../static/chat/api.js";

test("isAhead: later in the same epoch, or any seq of another epoch", () => {
  assert.equal(isAhead({ epoch: "e1", seq: 3 }, null), true);
  assert.equal(isAhead({ epoch: "e1", seq: 3 }, { epoch: "e1", seq: 2 }), true);
  assert.equal(isAhead({ epoch: "e1", seq: 3 }, { epoch: "e1", seq: 3 }), false);
  assert.equal(isAhead({ epoch: "e2", seq: 1 }, { epoch: "e1", seq: 30 }), true);
  assert.equal(isAhead({ epoch: "", seq: 3 }, null), false);
  assert.equal(isAhead({ epoch: "e1", seq: 0 }, null), false);
  assert.equal(isAhead(null, null), false);
});

function tracker(t, { known = null, fail = false } = {}) {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const sent = [];
  const reading = new ReadTracker({
    stream: "dm:1.2",
    known,
    send: async (stream, position) => {
      sent.push([stream, position.epoch, position.seq]);
      if (fail) throw new Error("HTTP 503");
      return position;
    },
  });
  return { reading, sent };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

test("a burst of messages seen is one POST of the highest, after the wait", async (t) => {
  const { reading, sent } = tracker(t, { known: { epoch: "e1", seq: 2 } });
  reading.saw({ epoch: "e1", seq: 1 }); // behind what the server keeps
  t.mock.timers.tick(READ_DEBOUNCE);
  assert.deepEqual(sent, []);
  for (const seq of [3, 4, 5]) reading.saw({ epoch: "e1", seq });
  t.mock.timers.tick(READ_DEBOUNCE - 1);
  assert.deepEqual(sent, []);
  t.mock.timers.tick(1);
  await settle();
  assert.deepEqual(sent, [["dm:1.2", "e1", 5]]);
  reading.saw({ epoch: "e1", seq: 5 }); // seen again: nothing to say
  t.mock.timers.tick(READ_DEBOUNCE);
  await settle();
  assert.equal(sent.length, 1);
});

test("what is seen while a POST is out goes after it", async (t) => {
  const { reading, sent } = tracker(t);
  reading.saw({ epoch: "e1", seq: 1 });
  t.mock.timers.tick(READ_DEBOUNCE);
  reading.saw({ epoch: "e1", seq: 2 }); // the first is in flight
  await settle();
  t.mock.timers.tick(READ_DEBOUNCE);
  await settle();
  assert.deepEqual(sent.map((s) => s[2]), [1, 2]);
});

test("a failed POST is tried again when more is seen; stop() ends it", async (t) => {
  const { reading, sent } = tracker(t, { fail: true });
  reading.saw({ epoch: "e1", seq: 4 });
  t.mock.timers.tick(READ_DEBOUNCE);
  await settle();
  reading.saw({ epoch: "e1", seq: 4 });
  t.mock.timers.tick(READ_DEBOUNCE);
  await settle();
  assert.equal(sent.length, 2);
  reading.stop();
  reading.saw({ epoch: "e1", seq: 9 });
  t.mock.timers.tick(READ_DEBOUNCE);
  await settle();
  assert.equal(sent.length, 2);
});

test("csrfToken: the cookie, else the bell's data-csrf, else a form's input", () => {
  const doc = (cookie, carrier = null, input = null) => ({
    cookie,
    querySelector: (selector) => (selector === "[data-csrf]" ? carrier : input),
  });
  assert.equal(csrfToken(doc("sessionid=x; csrftoken=abc%3D; other=1")), "abc=");
  assert.equal(csrfToken(doc("sessionid=x", { dataset: { csrf: "from-bell" } })), "from-bell");
  assert.equal(csrfToken(doc("", null, { value: "from-form" })), "from-form");
  assert.equal(csrfToken(doc("")), "");
});

test("streamSegment keeps the kind's colon and escapes the rest", () => {
  assert.equal(streamSegment("dm:1.2"), "dm:1.2");
  assert.equal(streamSegment("group:a b"), "group:a%20b");
});
