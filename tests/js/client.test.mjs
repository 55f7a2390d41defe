// static/realtime/client.js without a browser: a Subscription's position and dedup, the
// subscribe frames it builds, and the client driven over a scripted socket.
import { test } from "node:test";
import assert from "node:assert/strict";

import { RealtimeClient, State, Subscription, randomId, wsUrl } from "../../static/realtime/client.js";

/** A WebSocket that records what is sent and lets the test play the server. */
class ScriptedSocket {
  static made = [];

  constructor(url) {
    this.url = url;
    this.sent = [];
    this.closed = null;
    ScriptedSocket.made.push(this);
  }

  send(text) {
    this.sent.push(JSON.parse(text));
  }

  close(code, reason) {
    this.closed = { code, reason };
  }

  open() {
    this.onopen && this.onopen({});
  }

  frame(frame) {
    this.onmessage && this.onmessage({ data: JSON.stringify(frame) });
  }

  drop(code = 1006, reason = "") {
    this.onclose && this.onclose({ code, reason });
  }
}

function offlineClient(options = {}) {
  return new RealtimeClient({ url: "ws://example.invalid/ws/", autoConnect: false, watchNetwork: false, ...options });
}

function scriptedClient(options = {}) {
  ScriptedSocket.made = [];
  const client = offlineClient({ WebSocket: ScriptedSocket, backoff: () => 0, ...options });
  client.connect();
  const socket = () => ScriptedSocket.made[ScriptedSocket.made.length - 1];
  return { client, socket };
}

const msg = (seq, epoch = "e1", data = { text: `m${seq}` }) => ({ type: "message", stream: "room:a", seq, epoch, ts: 1, data, sender: null });

test("the first subscribe frame: history, occupancy, or nothing", () => {
  const client = offlineClient();
  assert.deepEqual(new Subscription(client, "room:a", {})._frame(), { type: "subscribe", stream: "room:a" });
  assert.deepEqual(new Subscription(client, "room:a", { history: 50 })._frame(), { type: "subscribe", stream: "room:a", history: 50 });
  assert.deepEqual(new Subscription(client, "room:a", { history: 50, occupancy: true })._frame(), {
    type: "subscribe",
    stream: "room:a",
    history: 50,
    occupancy: true,
  });
});

test("since wins over history, and follows the position", () => {
  const client = offlineClient();
  const sub = new Subscription(client, "room:a", { history: 50, since: { epoch: "e1", seq: 7 } });
  assert.deepEqual(sub._frame(), { type: "subscribe", stream: "room:a", since: { epoch: "e1", seq: 7 } });
  sub._onMessage(msg(8));
  assert.deepEqual(sub._frame().since, { epoch: "e1", seq: 8 });
  assert.equal(sub._frame().history, undefined);
});

test("messages at or below the position are dropped; a new epoch is taken", () => {
  const client = offlineClient();
  const got = [];
  const sub = new Subscription(client, "room:a", { onMessage: (m) => got.push(`${m.epoch}:${m.seq}`) });
  sub._onSubscribed({ type: "subscribed", stream: "room:a", epoch: "e1", seq: 3, recovered: true });
  assert.equal(sub.seq, 3); // no history: nothing at or below 3 will come
  for (const seq of [2, 3, 4, 4, 5, 3]) sub._onMessage(msg(seq));
  sub._onMessage(msg(1, "e2"));
  assert.deepEqual(got, ["e1:4", "e1:5", "e2:1"]);
  assert.deepEqual([sub.epoch, sub.seq], ["e2", 1]);
});

test("with history the position waits for the replayed messages", () => {
  const client = offlineClient();
  const got = [];
  const sub = new Subscription(client, "room:a", { history: 10, onMessage: (m) => got.push(m.seq) });
  sub._onSubscribed({ type: "subscribed", stream: "room:a", epoch: "e1", seq: 12, recovered: true });
  assert.equal(sub.seq, null);
  assert.equal(sub._frame().history, 10); // a reconnect before any message asks again
  for (const seq of [3, 4, 12, 12, 13]) sub._onMessage(msg(seq));
  assert.deepEqual(got, [3, 4, 12, 13]);
  // An empty stream with history: its position is known at once.
  const empty = new Subscription(client, "room:b", { history: 10 });
  empty._onSubscribed({ type: "subscribed", stream: "room:b", epoch: "e9", seq: 0, recovered: true });
  assert.deepEqual([empty.epoch, empty.seq], ["e9", 0]);
});

test("recovered: false moves the position and tells the page", () => {
  const client = offlineClient();
  const failed = [];
  const emitted = [];
  client.on("recoveryFailed", (info) => emitted.push(info));
  const sub = new Subscription(client, "room:a", { since: { epoch: "e1", seq: 5 }, onRecoveryFailed: (info) => failed.push(info) });
  sub.pending = true;
  sub._onSubscribed({ type: "subscribed", stream: "room:a", epoch: "e2", seq: 40, recovered: false });
  assert.deepEqual(failed, [{ stream: "room:a", epoch: "e2", seq: 40 }]);
  assert.deepEqual(emitted, failed);
  assert.deepEqual(sub._frame().since, { epoch: "e2", seq: 40 });
});

test("a resumed subscription keeps its position across the subscribed reply", () => {
  const client = offlineClient();
  const sub = new Subscription(client, "room:a", { history: 50, since: { epoch: "e1", seq: 9 } });
  sub.pending = true;
  sub._onSubscribed({ type: "subscribed", stream: "room:a", epoch: "e1", seq: 20, recovered: true });
  assert.deepEqual([sub.epoch, sub.seq], ["e1", 9]); // 10..20 are replayed next
});

test("over a socket: subscribe, drop, resubscribe with since, once each in order", async () => {
  const { client, socket } = scriptedClient();
  const states = [];
  client.on("state", ({ newState }) => states.push(newState));
  const got = [];
  client.subscribe("room:a", { history: 2, occupancy: true, onMessage: (m) => got.push(m.seq) });
  const first = socket();
  assert.equal(first.url, "ws://example.invalid/ws/");
  first.open();
  assert.equal(client.state, State.CONNECTED);
  assert.deepEqual(first.sent, [{ type: "subscribe", stream: "room:a", history: 2, occupancy: true }]);
  first.frame({ type: "subscribed", stream: "room:a", epoch: "e1", seq: 6, recovered: true });
  for (const seq of [5, 6, 7]) first.frame(msg(seq));
  first.drop(1012);
  assert.equal(client.state, State.CONNECTING);
  await new Promise((resolve) => setTimeout(resolve, 5));
  const second = socket();
  assert.notEqual(second, first);
  second.open();
  assert.deepEqual(second.sent, [{ type: "subscribe", stream: "room:a", since: { epoch: "e1", seq: 7 }, occupancy: true }]);
  second.frame({ type: "subscribed", stream: "room:a", epoch: "e1", seq: 9, recovered: true });
  for (const seq of [6, 7, 8, 9, 8]) second.frame(msg(seq));
  first.frame(msg(10)); // the old socket's callbacks are gone
  assert.deepEqual(got, [5, 6, 7, 8, 9]);
  assert.deepEqual(states, [State.CONNECTED, State.CONNECTING, State.CONNECTED]);
  client.destroy();
});

test("a token goes in the URL; a terminal close stops the client", () => {
  const { client, socket } = scriptedClient({ token: "a.b c" });
  const closed = [];
  client.on("closed", (info) => closed.push(info));
  assert.equal(socket().url, "ws://example.invalid/ws/?token=a.b%20c");
  socket().open();
  socket().drop(4501, "bad token");
  assert.deepEqual(closed, [{ code: 4501, reason: "bad token" }]);
  assert.equal(client.state, State.DISCONNECTED);
  assert.equal(ScriptedSocket.made.length, 1);
});

test("publishes wait offline and are sent again with the same id until the ack", async () => {
  let n = 0;
  const { client, socket } = scriptedClient({ newId: () => `id-${++n}` });
  const ack = client.publish("room:a", { text: "hi" });
  const first = socket();
  first.open();
  assert.deepEqual(first.sent, [{ type: "publish", stream: "room:a", data: { text: "hi" }, id: "id-1" }]);
  first.drop(1006);
  await new Promise((resolve) => setTimeout(resolve, 5));
  socket().open();
  assert.deepEqual(socket().sent, [{ type: "publish", stream: "room:a", data: { text: "hi" }, id: "id-1" }]);
  socket().frame({ type: "ack", id: "id-1", stream: "room:a", seq: 3, epoch: "e1" });
  assert.deepEqual(await ack, { id: "id-1", stream: "room:a", seq: 3, epoch: "e1" });

  const refused = client.publish("room:a", { text: "no" });
  socket().frame({ type: "error", id: "id-2", code: "forbidden", message: "not yours" });
  await assert.rejects(refused, (err) => err.name === "RealtimeError" && err.code === "forbidden");
  client.destroy();
});

test("send() is false while not connected; unknown frames are emitted by type", () => {
  const { client, socket } = scriptedClient();
  assert.equal(client.send({ type: "typing", stream: "room:a" }), false);
  socket().open();
  const seen = [];
  client.on("presence", (frame) => seen.push(frame.members));
  assert.equal(client.send({ type: "presence", stream: "room:a" }), true);
  socket().frame({ type: "presence", stream: "room:a", members: [] });
  assert.deepEqual(seen, [[]]);
  client.destroy();
});

test("randomId is a version 4 UUID; wsUrl picks ws or wss", () => {
  assert.match(randomId(), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(wsUrl(new URL("https://rt.example.com/static/x.js")), "wss://rt.example.com/ws/");
  assert.equal(wsUrl({ protocol: "http:", host: "127.0.0.1:8000" }), "ws://127.0.0.1:8000/ws/");
});
