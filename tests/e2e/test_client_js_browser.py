"""static/realtime/client.js by itself, in Chromium.

Two kinds of test: the client against a WebSocket constructor that the test scripts
(failures, close codes, replays and acks in an exact order), and the client against the
real server (resubscribe with `since` after a reconnect, no duplicates, idempotent ids).
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.tokens import mint
from tests.wsclient import Client

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# A WebSocket stand-in the test drives by hand, plus small helpers, defined on the page.
SCRIPTED = """
window.sockets = [];
window.ScriptedSocket = class {
  constructor(url) { this.url = url; this.sent = []; this.closedWith = null; window.sockets.push(this); }
  send(text) { this.sent.push(JSON.parse(text)); }
  close(code, reason) { this.closedWith = { code, reason }; }
  open() { this.onopen && this.onopen({}); }
  receive(frame) { this.onmessage && this.onmessage({ data: JSON.stringify(frame) }); }
  drop(code) { this.onclose && this.onclose({ code, reason: "scripted" }); }
};
window.until = async (check, what) => {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("gave up waiting for " + what);
};
window.settle = () => new Promise((r) => setTimeout(r, 50));
"""


@pytest.fixture
def module_page(start_server, people):
    server = start_server("uvicorn")
    person = people(server.http)
    person.page.goto(server.http + "/rooms/")
    person.page.evaluate(SCRIPTED)  # not an inline <script>: the page's CSP refuses those
    yield person
    assert person.errors == []


def test_backoff_and_close_codes(module_page) -> None:
    result = module_page.page.evaluate(
        """async () => {
      const { RealtimeClient, State } = await import("/static/realtime/client.js");
      const attempts = [], states = [], closed = [];
      const client = new RealtimeClient({
        url: "ws://example.invalid/ws/", token: "a b", WebSocket: ScriptedSocket,
        backoff: (n) => { attempts.push(n); return 0; }, watchNetwork: false,
      });
      const off = client.on("state", (change) => states.push(change));
      client.on("closed", (info) => closed.push(info.code));
      const next = async (n) => { await until(() => sockets.length === n, `socket ${n}`); return sockets[n - 1]; };

      const first = await next(1);
      first.drop(1006);                       // refused before opening
      (await next(2)).drop(1011);
      const third = await next(3);
      third.open();
      const afterOpen = client.state;
      const thirdHandler = third.onmessage;   // kept past its socket's life on purpose
      third.drop(1012);                       // service restart
      const fourth = await next(4);
      fourth.open();
      fourth.drop(4000);                      // fell behind: reconnect
      const fifth = await next(5);
      fifth.open();
      // A late frame from an older socket is ignored.
      let stale = 0;
      client.on("pong", () => stale++);
      thirdHandler({ data: JSON.stringify({ type: "pong" }) });
      fifth.drop(4499);
      const sixth = await next(6);
      sixth.open();
      sixth.receive({ type: "pong" });
      sixth.drop(4501);                       // bad token: stop
      await settle();
      const stateAfterTerminal = client.state;
      off();
      client.connect();                       // the page may try again on purpose
      await next(7);
      return {
        url: first.url, attempts, states, closed, afterOpen, stale, stateAfterTerminal,
        sockets: sockets.length, statesAfterOff: states.length,
      };
    }"""
    )
    assert result["url"] == "ws://example.invalid/ws/?token=a%20b"
    # Retry 1, 2 while failing; the count starts again after each successful open.
    assert result["attempts"] == [1, 2, 1, 1, 1]
    assert result["afterOpen"] == "connected"
    assert result["closed"] == [4501]
    assert result["stateAfterTerminal"] == "disconnected"
    assert result["stale"] == 1  # only the current socket's pong counted
    assert result["sockets"] == 7
    transitions = [(s["oldState"], s["newState"]) for s in result["states"]]
    assert transitions[0] == ("connecting", "connected")  # the listener came after connect()
    assert all(old != new for old, new in transitions)
    assert transitions[-1] == ("connected", "disconnected")
    assert transitions.count(("connected", "connecting")) == 3  # 1012, 4000, 4499
    assert result["statesAfterOff"] == len(result["states"])


def test_resume_with_since_drops_duplicates_and_retries_publishes(module_page) -> None:
    result = module_page.page.evaluate(
        """async () => {
      const { RealtimeClient } = await import("/static/realtime/client.js");
      let n = 0;
      const got = [], failures = [], events = [];
      const client = new RealtimeClient({
        url: "ws://example.invalid/ws/", WebSocket: ScriptedSocket, backoff: () => 0,
        watchNetwork: false, newId: () => `id-${++n}`,
      });
      client.on("recoveryFailed", (info) => events.push(info));
      client.subscribe("room:r", { history: 10, onMessage: (m) => got.push([m.epoch, m.seq]), onRecoveryFailed: (i) => failures.push(i) });
      const acked = client.publish("room:r", { text: "queued offline" });
      const msg = (seq, epoch = "E") => ({ type: "message", stream: "room:r", seq, epoch, ts: 1, data: {}, sender: null });

      const a = sockets[0];
      a.open();
      const firstFrames = a.sent.slice();
      a.receive({ type: "subscribed", stream: "room:r", epoch: "E", seq: 2, recovered: true });
      a.receive(msg(1)); a.receive(msg(2));
      a.drop(1006);                                        // before the ack came
      await until(() => sockets.length === 2, "reconnect");
      const b = sockets[1];
      b.open();
      const resumeFrames = b.sent.slice();
      b.receive({ type: "subscribed", stream: "room:r", epoch: "E", seq: 3, recovered: true });
      b.receive(msg(2)); b.receive(msg(3)); b.receive(msg(3));   // overlap of replay and live
      b.receive({ type: "ack", id: "id-1", stream: "room:r", seq: 3, epoch: "E" });
      const ack = await acked;

      // A gap the server cannot fill: told once, delivery goes on after its seq.
      b.receive({ type: "subscribed", stream: "room:r", epoch: "F", seq: 10, recovered: false });
      b.receive(msg(10, "F")); b.receive(msg(11, "F"));

      // A refused publish rejects; a rate-limited one is sent again with the same id.
      const refused = client.publish("room:r", { text: "no" });
      b.receive({ type: "error", code: "forbidden", message: "nope", id: "id-2", stream: "room:r" });
      let refusal = null;
      try { await refused; } catch (err) { refusal = { code: err.code, name: err.name }; }
      const limited = client.publish("room:r", { text: "slow down" });
      b.receive({ type: "error", code: "rate_limited", message: "wait", id: "id-3", stream: "room:r", retry_after: 0.02 });
      await until(() => b.sent.filter((f) => f.id === "id-3").length === 2, "retry of id-3");
      b.receive({ type: "ack", id: "id-3", stream: "room:r", seq: 12, epoch: "F" });
      const limitedAck = await limited;
      return { firstFrames, resumeFrames, got, ack, failures, events, refusal, limitedAck, outgoing: client.outgoing.size };
    }"""
    )
    assert result["firstFrames"] == [
        {"type": "subscribe", "stream": "room:r", "history": 10},
        {"type": "publish", "stream": "room:r", "data": {"text": "queued offline"}, "id": "id-1"},
    ]
    assert result["resumeFrames"] == [
        {"type": "subscribe", "stream": "room:r", "since": {"epoch": "E", "seq": 2}},
        {"type": "publish", "stream": "room:r", "data": {"text": "queued offline"}, "id": "id-1"},
    ]
    assert result["got"] == [["E", 1], ["E", 2], ["E", 3], ["F", 11]]
    assert result["ack"] == {"id": "id-1", "stream": "room:r", "seq": 3, "epoch": "E"}
    assert result["failures"] == result["events"] == [{"stream": "room:r", "epoch": "F", "seq": 10}]
    assert result["refusal"] == {"code": "forbidden", "name": "RealtimeError"}
    assert result["limitedAck"]["seq"] == 12
    assert result["outgoing"] == 0


def test_unanswered_ping_drops_the_socket_and_reconnects(module_page) -> None:
    result = module_page.page.evaluate(
        """async () => {
      const { RealtimeClient } = await import("/static/realtime/client.js");
      const reasons = [];
      const client = new RealtimeClient({
        url: "ws://example.invalid/ws/", WebSocket: ScriptedSocket, backoff: () => 0,
        watchNetwork: false, pingInterval: 20, pongTimeout: 40,
      });
      client.on("disconnected", (info) => reasons.push(info.reason));
      sockets[0].open();
      await until(() => sockets[0].sent.some((f) => f.type === "ping"), "a ping");
      await until(() => sockets.length === 2, "a new socket after no pong");
      const old = sockets[0];
      sockets[1].open();
      client.disconnect();
      return { oldClosed: old.closedWith !== null, reasons, state: client.state, newClosed: sockets[1].closedWith };
    }"""
    )
    assert result["oldClosed"] is True
    assert result["reasons"] == ["no pong"]
    assert result["state"] == "disconnected"
    assert result["newClosed"]["code"] == 1000


def test_real_server_resume_with_since_and_idempotent_publish(start_server, people, chat_users) -> None:
    server = start_server("uvicorn")
    alice = people(server.http)
    alice.sign_in("alice")
    page = alice.page
    page.evaluate(SCRIPTED)
    page.evaluate(
        """async () => {
      const { RealtimeClient } = await import("/static/realtime/client.js");
      window.frames_ = [];
      class Spy extends WebSocket {
        send(text) { window.frames_.push(JSON.parse(text)); super.send(text); }
      }
      window.got = [];
      window.rt = new RealtimeClient({ WebSocket: Spy, backoff: () => 100 });
      window.rt.subscribe("room:resume", { history: 20, onMessage: (m) => window.got.push(m) });
      window.acks = [];
      for (const text of ["a", "b", "c"]) window.acks.push(await window.rt.publish("room:resume", { text }, { id: "fixed-" + text }));
      await until(() => window.got.length === 3, "three messages");
      window.rt.disconnect();
    }"""
    )

    async def publish_elsewhere() -> None:
        other = await Client.connect(server.ws + "?token=" + mint(sub="9999", name="elsewhere"))
        for text in ("d", "e"):
            reply = await other.request({"type": "publish", "stream": "room:resume", "data": {"text": text}, "id": text})
            assert reply["type"] == "ack", reply
        await other.close()

    # Playwright's sync API owns this thread's event loop: the other client runs in a thread.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, publish_elsewhere()).result(30)
    result = page.evaluate(
        """async () => {
      window.rt.connect();
      await until(() => window.got.length === 5, "five messages");
      // The same id again: the server answers with the first seq, nothing new is stored.
      const again = await window.rt.publish("room:resume", { text: "a" }, { id: "fixed-a" });
      await settle();
      const subscribes = window.frames_.filter((f) => f.type === "subscribe");
      window.rt.destroy();
      return {
        subscribes, again, acks: window.acks,
        got: window.got.map((m) => [m.seq, m.data.text, m.sender && m.sender.name]),
      };
    }"""
    )
    first, second = result["subscribes"]
    assert first == {"type": "subscribe", "stream": "room:resume", "history": 20}
    epoch = result["acks"][0]["epoch"]
    assert second == {"type": "subscribe", "stream": "room:resume", "since": {"epoch": epoch, "seq": 3}}
    assert [a["seq"] for a in result["acks"]] == [1, 2, 3]
    assert result["got"] == [
        [1, "a", "alice"], [2, "b", "alice"], [3, "c", "alice"], [4, "d", "elsewhere"], [5, "e", "elsewhere"],
    ]
    assert result["again"]["seq"] == 1
    assert alice.errors == []


def test_refused_and_unavailable_subscribes_and_default_ids(module_page) -> None:
    result = module_page.page.evaluate(
        """async () => {
      const { RealtimeClient, randomId } = await import("/static/realtime/client.js");
      const refusals = [];
      const client = new RealtimeClient({ url: "ws://example.invalid/ws/", WebSocket: ScriptedSocket, backoff: () => 0, watchNetwork: false });
      client.subscribe("user:1", { onError: (err) => refusals.push(err.code) });
      client.subscribe("room:busy", {});
      const ws = sockets[0];
      ws.open();
      ws.receive({ type: "error", code: "forbidden", message: "not yours", stream: "user:1" });
      ws.receive({ type: "error", code: "unavailable", message: "Redis down", stream: "room:busy" });
      await until(() => ws.sent.filter((f) => f.stream === "room:busy" && f.type === "subscribe").length === 2, "a second subscribe");
      client.publish("room:busy", { text: "x" });
      const id = ws.sent.find((f) => f.type === "publish").id;
      let resubscribedUser = false;
      try { client.subscribe("user:1", {}); resubscribedUser = true; } catch (err) {}
      return { refusals, id, other: randomId(), streams: [...client.subs.keys()], resubscribedUser };
    }"""
    )
    assert result["refusals"] == ["forbidden"]
    uuid4 = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
    assert re.match(uuid4, result["id"]) and re.match(uuid4, result["other"])
    assert result["id"] != result["other"]
    assert result["resubscribedUser"] is True  # a refused stream is forgotten, so it may be asked again
    assert result["streams"] == ["room:busy", "user:1"]
