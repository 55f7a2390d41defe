"""The frames one socket is handed in one turn of the loop go out in one `write`
(config/uvicorn_ws.py): a replay of many missed messages is one system call, not one per
message, and arrives whole and in order. uvicorn with the product's protocol class, in
process on a free port, a real WebSocket client, the real test Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn

from config.embedded_redis import free_port
from config.uvicorn_ws import DeadlineWebSocketProtocol
from realtime import runtime
from realtime.publishing import apublish
from tests.wsclient import Client

pytestmark = pytest.mark.django_db(transaction=True)
MISSED = 300


@pytest.fixture
async def served() -> AsyncIterator[str]:
    async for url, _ in _served():
        yield url


async def _served() -> AsyncIterator[tuple[str, uvicorn.Server]]:
    from config.asgi import application

    port = free_port()
    config = uvicorn.Config(application, host="127.0.0.1", port=port, ws=DeadlineWebSocketProtocol, lifespan="off",
                            ws_per_message_deflate=False, log_level="warning", loop="none")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield f"ws://127.0.0.1:{port}/ws/", server
    server.should_exit = True
    await serving
    await runtime.close_current()


async def test_a_replay_goes_out_in_one_write_and_in_order(served: str, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = "live:replayed"
    first = await apublish(stream, 0)
    for n in range(1, MISSED + 1):
        await apublish(stream, n)
    writes: list[int] = []  # bytes per transport write of coalesced frames
    original = DeadlineWebSocketProtocol.write_pending

    def counted(self: DeadlineWebSocketProtocol) -> None:
        if self._pending is not None:
            writes.append(sum(map(len, self._pending)))
        original(self)

    monkeypatch.setattr(DeadlineWebSocketProtocol, "write_pending", counted)
    client = await Client.connect(served, compression=None)
    await client.send({"type": "subscribe", "stream": stream, "since": {"epoch": first.epoch, "seq": first.seq}})
    subscribed = await client.recv()
    assert subscribed["type"] == "subscribed" and subscribed["recovered"] is True, subscribed
    got = await client.messages(stream, MISSED)
    assert [m["data"] for m in got] == list(range(1, MISSED + 1))
    # The subscribed frame and the whole replay were handed over in one turn: one write.
    assert len(writes) == 1 and writes[0] > MISSED * 60, writes
    live = await apublish(stream, "live")
    (message,) = await client.messages(stream, 1)
    assert (message["seq"], message["data"]) == (live.seq, "live") and len(writes) == 2
    await client.close()


async def test_a_close_goes_out_after_the_frames_handed_over_before_it(served: str, settings: Any) -> None:
    """The close (uvicorn's own path) waits for the pending frames: every error frame the
    server answered arrives, then the 4508 close."""
    settings.RT_BAD_FRAME_LIMIT = 3
    client = await Client.connect(served, compression=None)
    for n in range(4):
        await client.send({"type": "subscribe", "stream": f"nope:{n}", "id": str(n)})
    errors = [await client.recv() for _ in range(4)]
    assert [(e["type"], e["code"], e.get("stream")) for e in errors] == [("error", "bad_request", f"nope:{n}") for n in range(4)]
    await asyncio.wait_for(client.ws.wait_closed(), 5)
    assert client.ws.close_code == 4508, client.ws.close_code


async def test_an_idle_socket_holds_no_handshake_and_shares_its_queue_parts() -> None:
    """What each idle socket holds (bench/conn_memory.py): not the handshake's request
    and response once answered, and one shared deque of blocked puts and one join event
    for every receive queue (unbounded, never joined); the queue still delivers."""
    from config import uvicorn_ws

    async for url, server in _served():
        clients = [await Client.connect(url, compression=None) for _ in range(3)]
        for client in clients:
            assert (await client.request({"type": "ping"}))["type"] == "pong"
        sockets = [c for c in server.server_state.connections if isinstance(c, DeadlineWebSocketProtocol)]
        assert len(sockets) == 3
        for protocol in sockets:
            assert protocol.request is None and protocol.response is None
            assert protocol.queue._putters is uvicorn_ws._NO_PUTTERS and protocol.queue._finished is uvicorn_ws._NEVER_JOINED
        assert not uvicorn_ws._NO_PUTTERS
        for client in clients:
            await client.close()


def test_a_finished_loop_is_forgotten_with_its_coalescer() -> None:
    """The coalescer table holds loops weakly, and the one-entry cache of the last one
    used holds its loop weakly too: a loop that ran a server goes when it is done."""
    import gc
    import weakref

    from config import uvicorn_ws

    loop = asyncio.new_event_loop()
    found = uvicorn_ws._coalescer(loop)
    assert uvicorn_ws._coalescer(loop) is found and uvicorn_ws._last is found  # the cached one, again
    gone = weakref.ref(loop)
    loop.close()
    del loop
    gc.collect()
    assert gone() is None
    assert found.loop() is None and found not in uvicorn_ws._coalescers.values()
    other = asyncio.new_event_loop()
    try:
        assert uvicorn_ws._coalescer(other) is not found  # a new loop never gets a dead one's
    finally:
        other.close()


def test_one_socket_failing_its_write_does_not_keep_the_others_from_theirs() -> None:
    from config import uvicorn_ws

    class Socket:
        def __init__(self, loop: asyncio.AbstractEventLoop, fails: bool) -> None:
            self.loop, self.fails, self.written = loop, fails, 0

        def write_pending(self) -> None:
            if self.fails:
                raise RuntimeError("unable to perform operation on <TCPTransport closed=True>")
            self.written += 1

    loop = asyncio.new_event_loop()
    try:
        coalescer = uvicorn_ws._Coalescer(loop)
        sockets = [Socket(loop, fails=n == 0) for n in range(3)]
        for sock in sockets:
            coalescer.add(sock, float("-inf"))  # type: ignore[arg-type]
        coalescer.flush()
        assert [s.written for s in sockets] == [0, 1, 1] and coalescer.dirty == []
    finally:
        loop.close()


async def test_a_socket_written_within_the_interval_is_held_and_gets_the_burst_in_one_write(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RT_WS_COALESCE_MS paces each socket on its own: a quiet socket is written at once,
    also right after another socket's write (the publisher's ack does not hold back the
    fan-out); one written less than the interval ago is held, and what it is handed
    meanwhile goes out in one write, in order."""
    from config import uvicorn_ws
    from tests.tokens import mint

    settings.RT_WS_COALESCE_MS = 1000  # long enough that no pause of a busy test machine splits the burst
    stream = "live:paced"
    writes: dict[int, list[tuple[str, int]]] = {}  # socket -> ("now" | "held", frames) per write
    held = [False]
    write_pending, flush_held = DeadlineWebSocketProtocol.write_pending, uvicorn_ws._Coalescer.flush_held

    def counted(self: DeadlineWebSocketProtocol) -> None:
        if self._pending is not None:
            writes.setdefault(id(self), []).append(("held" if held[0] else "now", len(self._pending)))
        write_pending(self)

    def timed(self: uvicorn_ws._Coalescer) -> None:
        held[0] = True
        try:
            flush_held(self)
        finally:
            held[0] = False

    monkeypatch.setattr(DeadlineWebSocketProtocol, "write_pending", counted)
    monkeypatch.setattr(uvicorn_ws._Coalescer, "flush_held", timed)
    async for url, server in _served():
        reader = await Client.connect(url, compression=None)
        await reader.subscribe(stream)
        publisher = await Client.connect(url + "?token=" + mint(sub="pub", pubs=["live:*"]), compression=None)
        await asyncio.sleep(1.1)  # both quiet for longer than the interval
        writes.clear()
        for n in range(4):
            await publisher.send({"type": "publish", "stream": stream, "data": n, "id": f"p{n}"})
        acks = [await publisher.recv() for _ in range(4)]
        assert [(a["type"], a["id"]) for a in acks] == [("ack", f"p{n}") for n in range(4)], acks
        got = await reader.messages(stream, 4)
        assert [(m["data"], m["seq"]) for m in got] == [(n, a["seq"]) for n, a in enumerate(acks)]
        sockets = {id(c) for c in server.server_state.connections if isinstance(c, DeadlineWebSocketProtocol)}
        assert set(writes) == sockets and len(sockets) == 2, writes
        for per_socket in writes.values():
            # The first of the four (or more, if they came in one turn) went at once, the
            # rest in one held write.
            assert len(per_socket) == 2 and per_socket[0][0] == "now" and per_socket[1][0] == "held", writes
            assert per_socket[0][1] + per_socket[1][1] == 4, writes
        await reader.close()
        await publisher.close()


def test_no_interval_writes_every_socket_at_the_end_of_the_turn() -> None:
    """RT_WS_COALESCE_MS=0: nothing is ever held, however recent the last write."""
    from config import uvicorn_ws

    class Socket:
        def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
            self.loop, self.written = loop, 0

        def write_pending(self) -> None:
            self.written += 1

    loop = asyncio.new_event_loop()
    try:
        coalescer = uvicorn_ws._Coalescer(loop, interval=0.0)
        sock = Socket(loop)
        coalescer.add(sock, loop.time())  # type: ignore[arg-type]
        assert coalescer.dirty == [sock] and coalescer.held == []
        loop.run_until_complete(asyncio.sleep(0))
        assert sock.written == 1 and coalescer.dirty == []
        paced = uvicorn_ws._Coalescer(loop, interval=5.0)
        paced.add(sock, loop.time())  # type: ignore[arg-type]
        assert paced.held == [sock] and paced.dirty == []
        paced.add(Socket(loop), float("-inf"))  # type: ignore[arg-type]
        assert len(paced.dirty) == 1
    finally:
        loop.close()


def test_the_hold_grows_with_the_time_a_big_round_of_writes_takes() -> None:
    """While writing every socket once takes longer than RT_WS_COALESCE_MS, a socket is
    held 1.5 rounds (at most 50 ms), so that under a fan-out the process cannot keep up
    with one write per message each write carries several; a small round (an ack) does
    not change it, and 0 turns pacing off altogether."""
    import time

    from config import uvicorn_ws

    class Socket:
        def __init__(self, loop: asyncio.AbstractEventLoop, takes: float) -> None:
            self.loop, self.takes = loop, takes

        def write_pending(self) -> None:
            time.sleep(self.takes)  # at least this long: the bounds below cannot fail by chance

    loop = asyncio.new_event_loop()
    try:
        coalescer = uvicorn_ws._Coalescer(loop, interval=0.002)
        for sock in [Socket(loop, 0.001) for _ in range(uvicorn_ws.BIG_ROUND)]:
            coalescer.add(sock, float("-inf"))  # type: ignore[arg-type]
        coalescer.flush()
        assert coalescer.hold >= 1.5 * uvicorn_ws.BIG_ROUND * 0.001
        sock = Socket(loop, 0.0)
        coalescer.add(sock, loop.time() - 0.01)  # type: ignore[arg-type]  # written 10 ms ago: still held
        assert coalescer.held == [sock]
        coalescer.flush_held()
        assert coalescer.hold >= 1.5 * uvicorn_ws.BIG_ROUND * 0.001  # one socket: not a big round
        for sock in [Socket(loop, 0.004) for _ in range(uvicorn_ws.BIG_ROUND)]:
            coalescer.add(sock, float("-inf"))  # type: ignore[arg-type]
        coalescer.flush()
        assert coalescer.hold == uvicorn_ws.MAX_HOLD
        # The load goes: with no big round for two holds, a socket written 10 ms ago is
        # written at once again (a replay after a busy fan-out is not held 50 ms).
        coalescer.big_at -= 2 * uvicorn_ws.MAX_HOLD + 0.001
        sock = Socket(loop, 0.0)
        coalescer.add(sock, loop.time() - 0.01)  # type: ignore[arg-type]
        assert coalescer.dirty == [sock] and coalescer.held == []
        coalescer.flush()
        off = uvicorn_ws._Coalescer(loop, interval=0.0)
        for sock in [Socket(loop, 0.001) for _ in range(uvicorn_ws.BIG_ROUND)]:
            off.add(sock, float("-inf"))  # type: ignore[arg-type]
        off.flush()
        assert off.hold == 0.0
    finally:
        loop.close()


async def test_a_frame_held_when_the_peer_closes_is_written_before_the_close_reply(settings: Any) -> None:
    """The peer's close (uvicorn's `handle_close`) writes what is held for the socket first:
    the frame handed over just before arrives, then the close."""
    settings.RT_WS_COALESCE_MS = 1000
    stream = "live:held-at-close"
    async for url, _ in _served():
        reader = await Client.connect(url, compression=None)
        await reader.subscribe(stream)
        await asyncio.sleep(1.1)
        first = await apublish(stream, "first")
        (got,) = await reader.messages(stream, 1)
        assert got["seq"] == first.seq
        held = await apublish(stream, "held")  # within the hold: not written yet
        await asyncio.sleep(0.2)
        await reader.ws.close()
        message = await reader.ws.recv()  # frames that came before the close reply stay readable
        assert '"data":"held"' in message and f'"seq":{held.seq}' in message, message
