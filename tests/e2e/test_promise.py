"""The delivery promise (docs/protocol.md), end to end: real Redis, real server processes, real sockets.

Per stream, a subscriber gets `message` frames in strictly increasing seq, each at most
once, with no holes, when publishers race, when a subscriber changes server process,
when pub/sub loses a message, and when Redis restarts with its data; when the promise
cannot be kept it says `recovered: false`, never skipping silently.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from realtime import runtime
from realtime.backlog import frame_head, new_epoch
from realtime.names import stream_keys
from realtime.publishing import SERVER, message_tail
from tests.tokens import mint
from tests.wsclient import Client

PUBLISH = {"pubs": ["live:*"]}

# Redis is restarted from the test's own thread, never from a worker thread: the
# embedded server dies with the thread that started it (PR_SET_PDEATHSIG), and the
# session's other tests need it running.


def token_url(srv: Any, **claims: Any) -> str:
    return srv.ws + "?token=" + mint(**(claims or PUBLISH))


async def collect(client: Client, stream: str, upto: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    """Every frame of `stream` (messages and subscribed) until the message with seq `upto`."""
    got: list[dict[str, Any]] = []
    while True:
        frame = await client.recv(timeout)
        if frame.get("stream") != stream or frame["type"] not in ("message", "subscribed"):
            continue
        got.append(frame)
        if frame["type"] == "message" and frame["seq"] >= upto:
            return got


def seqs(frames: list[dict[str, Any]]) -> list[int]:
    return [f["seq"] for f in frames if f["type"] == "message"]


async def publish_until_ack(client: Client, stream: str, data: Any, id: str, deadline: float = 30.0) -> dict[str, Any]:
    """Publish, retrying the same `id` while the server answers `unavailable`."""
    end = time.monotonic() + deadline
    while True:
        reply = await client.request({"type": "publish", "stream": stream, "data": data, "id": id}, timeout=15)
        if reply["type"] == "ack":
            assert reply["id"] == id
            return reply
        assert reply["type"] == "error" and reply["code"] == "unavailable" and reply["id"] == id, reply
        assert time.monotonic() < end, "Redis did not come back"
        await asyncio.sleep(0.2)


async def publish_many(client: Client, stream: str, count: int, tag: str, start: int = 0) -> list[dict[str, Any]]:
    """Send `count` publishes without waiting, then read their acks."""
    for i in range(start, start + count):
        await client.send({"type": "publish", "stream": stream, "data": {"p": tag, "i": i}, "id": f"{tag}-{i}"})
    acks = []
    while len(acks) < count:
        frame = await client.recv(20)
        assert frame["type"] == "ack", frame
        acks.append(frame)
    return acks


async def append_without_fanout(stream: str, data: Any) -> int:
    """Store a message the way publish() does but skip group_send: a pub/sub message lost."""
    stored = await runtime.current().backlog.append(
        stream, message_tail(data, SERVER, int(time.time() * 1000)), sender_key="server", client_id=None, archive=False
    )
    return stored.seq


async def append_many_without_fanout(stream: str, data: list[str]) -> list[int]:
    """Several lost messages stored in one MULTI/EXEC: no position check sees half of them."""
    backlog = runtime.current().backlog
    keys = stream_keys(backlog.prefix, stream, backlog.buckets)
    ts = int(time.time() * 1000)
    async with backlog.redis.pipeline(transaction=True) as pipe:
        for item in data:
            args = [new_epoch(), frame_head(stream), message_tail(item, SERVER, ts), backlog.size, backlog.ttl, 60, stream]
            await backlog._append(keys=[keys.meta, keys.log, "", "", ""], args=args, client=pipe)
        replies = await pipe.execute()
    return [int(reply[0]) for reply in replies]


async def test_race_of_four_publishers_reaches_fifty_subscribers_on_two_processes(start_server) -> None:
    a = start_server("uvicorn", RT_PUBLISH_RATE="0")
    b = start_server("uvicorn", RT_PUBLISH_RATE="0")
    stream, per_publisher, publishers = "live:race", 1000, 4
    total = per_publisher * publishers
    subs = [await Client.connect((a if i % 2 else b).ws) for i in range(50)]
    for sub in subs:
        assert (await sub.subscribe(stream))["seq"] == 0
    pubs = [await Client.connect(token_url(a if i % 2 else b)) for i in range(publishers)]

    acked = await asyncio.gather(*(publish_many(p, stream, per_publisher, f"p{n}") for n, p in enumerate(pubs)))
    got = await asyncio.gather(*(collect(sub, stream, total) for sub in subs))

    assert sorted(ack["seq"] for acks in acked for ack in acks) == list(range(1, total + 1))
    for frames in got:
        assert [f["type"] for f in frames] == ["message"] * total  # no recovered:false on the way
        assert seqs(frames) == list(range(1, total + 1))
        # each publisher's messages keep that publisher's order
        for n in range(publishers):
            assert [f["data"]["i"] for f in frames if f["data"]["p"] == f"p{n}"] == list(range(per_publisher))
        assert len({f["epoch"] for f in frames}) == 1
    for c in subs + pubs:
        await c.close()


async def test_reconnect_mid_stream_with_since_to_another_process(start_server) -> None:
    a = start_server("uvicorn", RT_PUBLISH_RATE="0")
    b = start_server("uvicorn", RT_PUBLISH_RATE="0")
    stream = "live:reconnect"
    sub = await Client.connect(a.ws)
    epoch = (await sub.subscribe(stream))["epoch"]
    pub = await Client.connect(token_url(b))
    publishing = asyncio.create_task(publish_many(pub, stream, 600, "r"))
    first = await collect(sub, stream, 150)
    await sub.close()  # gone mid-stream; messages keep coming meanwhile
    last_seen = seqs(first)[-1]
    await asyncio.sleep(0.05)

    again = await Client.connect(b.ws)
    reply = await again.subscribe(stream, since={"epoch": epoch, "seq": last_seen})
    assert reply["recovered"] is True and reply["epoch"] == epoch and reply["seq"] >= last_seen
    rest = await collect(again, stream, 600)
    await publishing
    assert seqs(first) == list(range(1, last_seen + 1))
    assert seqs(rest) == list(range(last_seen + 1, 601))  # no hole, no duplicate
    assert [f["data"]["i"] for f in first + rest] == list(range(600))
    await again.close()
    await pub.close()


async def test_history_k(start_server) -> None:
    srv = start_server("uvicorn", RT_PUBLISH_RATE="0")
    stream = "live:history"
    pub = await Client.connect(token_url(srv))
    await publish_many(pub, stream, 10, "h")
    sub = await Client.connect(srv.ws)
    reply = await sub.subscribe(stream, history=4)
    assert reply["seq"] == 10 and reply["recovered"] is True
    assert [f["data"]["i"] for f in await sub.messages(stream, 4)] == [6, 7, 8, 9]
    await publish_many(pub, stream, 1, "h", start=10)
    [live] = await sub.messages(stream, 1)
    assert live["seq"] == 11
    # history larger than what exists: everything kept
    late = await Client.connect(srv.ws)
    assert (await late.subscribe(stream, history=500))["seq"] == 11
    assert seqs(await late.messages(stream, 11)) == list(range(1, 12))
    for c in (pub, sub, late):
        await c.close()


async def test_lost_pubsub_message_is_filled_from_the_backlog(start_server) -> None:
    a = start_server("uvicorn", RT_PUBLISH_RATE="0")
    b = start_server("uvicorn", RT_PUBLISH_RATE="0")
    stream = "live:lossy"
    subs = [await Client.connect(srv.ws) for srv in (a, b)]
    for sub in subs:
        await sub.subscribe(stream)
    pub = await Client.connect(token_url(a))

    # Revealed by the next message: seq 1 never reaches pub/sub, seq 2 does.
    assert await append_without_fanout(stream, "lost-1") == 1
    assert (await publish_until_ack(pub, stream, "two", "m2"))["seq"] == 2
    for sub in subs:
        frames = await collect(sub, stream, 2)
        assert [(f["seq"], f["data"]) for f in frames] == [(1, "lost-1"), (2, "two")]

    # The last message lost: nothing follows it, the position check (0.5 s here) finds it.
    assert await append_without_fanout(stream, "lost-3") == 3
    for sub in subs:
        frames = await collect(sub, stream, 3)
        assert [(f["seq"], f["data"]) for f in frames] == [(3, "lost-3")]

    # Several lost in a row, then a live one: all in order, once.
    for n in (4, 5, 6):
        assert await append_without_fanout(stream, f"lost-{n}") == n
    assert (await publish_until_ack(pub, stream, "seven", "m7"))["seq"] == 7
    for sub in subs:
        assert seqs(await collect(sub, stream, 7)) == [4, 5, 6, 7]
    for c in subs + [pub]:
        await c.close()


async def test_publish_during_replay(start_server) -> None:
    a = start_server("uvicorn", RT_PUBLISH_RATE="0")
    b = start_server("uvicorn", RT_PUBLISH_RATE="0")
    stream = "live:replay"
    pub = await Client.connect(token_url(a))
    await publish_many(pub, stream, 500, "x")
    probe = await Client.connect(a.ws)
    epoch = (await probe.subscribe(stream))["epoch"]
    await probe.close()

    async def replaying_subscriber(srv: Any, index: int) -> list[dict[str, Any]]:
        client = await Client.connect(srv.ws)
        if index % 3 == 0:
            reply = await client.subscribe(stream, since={"epoch": epoch, "seq": index})
            assert reply["recovered"] is True
        elif index % 3 == 1:
            await client.subscribe(stream, history=400)
        else:
            await client.subscribe(stream, since={"epoch": epoch, "seq": 0})
        frames = await collect(client, stream, 1000)
        await client.close()
        return frames

    publishing = asyncio.create_task(publish_many(pub, stream, 500, "x", start=500))
    results = await asyncio.gather(*(replaying_subscriber(a if i % 2 else b, i) for i in range(12)))
    await publishing
    for i, frames in enumerate(results):
        got = seqs(frames)
        assert got == list(range(got[0], 1001)), f"subscriber {i}: hole or duplicate"
        if i % 3 == 0:
            assert got[0] == i + 1
        elif i % 3 == 2:
            assert got[0] == 1
        assert all(f["type"] == "message" for f in frames)
    await pub.close()


async def test_since_older_than_the_backlog_is_not_recovered(start_server) -> None:
    srv = start_server("uvicorn", RT_PUBLISH_RATE="0", RT_BACKLOG_SIZE="5")
    stream = "live:short"
    pub = await Client.connect(token_url(srv))
    acks = await publish_many(pub, stream, 20, "s")
    epoch = acks[0]["epoch"]
    sub = await Client.connect(srv.ws)
    reply = await sub.subscribe(stream, since={"epoch": epoch, "seq": 2})
    assert reply["recovered"] is False and reply["seq"] == 20 and reply["epoch"] == epoch
    # within the backlog: recovered, with exactly the kept messages after since
    ok = await Client.connect(srv.ws)
    assert (await ok.subscribe(stream, since={"epoch": epoch, "seq": 16}))["recovered"] is True
    assert seqs(await ok.messages(stream, 4)) == [17, 18, 19, 20]
    # a since from the future, or an unknown epoch: recovered false too
    odd = await Client.connect(srv.ws)
    assert (await odd.subscribe(stream, since={"epoch": epoch, "seq": 99}))["recovered"] is False
    assert (await odd.subscribe("live:short2", since={"epoch": "nope", "seq": 0}))["recovered"] is False
    # delivery goes on after the position given
    await publish_many(pub, stream, 1, "s", start=20)
    assert seqs(await sub.messages(stream, 1)) == [21]
    assert seqs(await ok.messages(stream, 1)) == [21]
    for c in (pub, sub, ok, odd):
        await c.close()


async def test_redis_restart_with_data_keeps_the_stream(start_server, redis_server) -> None:
    a = start_server("uvicorn", RT_PUBLISH_RATE="0")
    b = start_server("uvicorn", RT_PUBLISH_RATE="0")
    stream = "live:durable"
    subs = [await Client.connect(srv.ws) for srv in (a, b)]
    epoch = (await subs[0].subscribe(stream))["epoch"]
    assert (await subs[1].subscribe(stream))["epoch"] == epoch
    pub = await Client.connect(token_url(a))
    await publish_many(pub, stream, 5, "d")
    for sub in subs:
        assert seqs(await collect(sub, stream, 5)) == [1, 2, 3, 4, 5]
    try:
        redis_server.restart(keep_data=True)
    finally:
        if redis_server.process is None:
            redis_server.start()
    for i in range(5, 10):
        ack = await publish_until_ack(pub, stream, {"p": "d", "i": i}, f"d-{i}")
        assert ack["epoch"] == epoch
    assert ack["seq"] == 10
    for sub in subs:
        frames = await collect(sub, stream, 10)
        assert [f["type"] for f in frames] == ["message"] * 5
        assert seqs(frames) == [6, 7, 8, 9, 10] and {f["epoch"] for f in frames} == {epoch}
    late = await Client.connect(b.ws)
    assert (await late.subscribe(stream, since={"epoch": epoch, "seq": 3}))["recovered"] is True
    assert seqs(await late.messages(stream, 7)) == list(range(4, 11))
    for c in subs + [pub, late]:
        await c.close()


async def test_redis_restart_empty_starts_a_new_epoch(start_server, redis_server) -> None:
    a = start_server("uvicorn", RT_PUBLISH_RATE="0")
    b = start_server("uvicorn", RT_PUBLISH_RATE="0")
    stream = "live:amnesia"
    subs = [await Client.connect(srv.ws) for srv in (a, b)]
    old = (await subs[0].subscribe(stream))["epoch"]
    await subs[1].subscribe(stream)
    pub = await Client.connect(token_url(b))
    await publish_many(pub, stream, 3, "o")
    for sub in subs:
        assert seqs(await collect(sub, stream, 3)) == [1, 2, 3]
    try:
        redis_server.restart(keep_data=False)
    finally:
        if redis_server.process is None:
            redis_server.start()
    ack = await publish_until_ack(pub, stream, "fresh", "n1")
    new = ack["epoch"]
    assert new != old and ack["seq"] == 1
    for sub in subs:
        frames = await collect(sub, stream, 1)
        assert frames[0]["type"] == "subscribed" and frames[0]["recovered"] is False and frames[0]["epoch"] == new
        assert frames[-1]["type"] == "message" and frames[-1]["epoch"] == new and frames[-1]["data"] == "fresh"
        assert seqs(frames) == [1]
    assert (await publish_until_ack(pub, stream, "next", "n2"))["seq"] == 2
    for sub in subs:
        assert seqs(await collect(sub, stream, 2)) == [2]
    late = await Client.connect(a.ws)
    reply = await late.subscribe(stream, since={"epoch": old, "seq": 3})
    assert reply["recovered"] is False and reply["epoch"] == new and reply["seq"] == 2
    for c in subs + [pub, late]:
        await c.close()


async def test_publish_while_redis_is_down_is_unavailable_then_stored_once(start_server, redis_server) -> None:
    srv = start_server("uvicorn", RT_PUBLISH_RATE="0")
    stream = "live:outage"
    sub = await Client.connect(srv.ws)
    await sub.subscribe(stream)
    pub = await Client.connect(token_url(srv))
    assert (await publish_until_ack(pub, stream, "before", "b1"))["seq"] == 1
    try:
        redis_server.stop()
        reply = await pub.request({"type": "publish", "stream": stream, "data": "during", "id": "o1"}, timeout=15)
        assert reply["type"] == "error" and reply["code"] == "unavailable"
        assert reply["id"] == "o1" and reply["stream"] == stream
        assert await pub.request({"type": "ping"}) == {"type": "pong"}  # still open
        assert pub.ws.close_code is None
    finally:
        if redis_server.process is None:
            redis_server.start()
    first = await publish_until_ack(pub, stream, "during", "o1")
    again = await publish_until_ack(pub, stream, "during", "o1")
    assert first["seq"] == again["seq"] == 2 and first["epoch"] == again["epoch"]
    assert (await publish_until_ack(pub, stream, "after", "a1"))["seq"] == 3
    frames = await collect(sub, stream, 3)
    assert [(f["seq"], f["data"]) for f in frames if f["type"] == "message"] == [(1, "before"), (2, "during"), (3, "after")]
    for c in (sub, pub):
        await c.close()


async def test_live_hole_trimmed_out_of_the_backlog_says_recovered_false(start_server, settings) -> None:
    """Lost pub/sub messages that the backlog no longer has: live subscribers are told
    `subscribed ... recovered: false` at the hole's end, then delivery goes on in order."""
    srv = start_server("uvicorn", RT_PUBLISH_RATE="0", RT_BACKLOG_SIZE="5")
    settings.RT_BACKLOG_SIZE = 5  # the test's own appends trim like the server's
    runtime.forget_all()
    stream = "live:trimmed"
    sub = await Client.connect(srv.ws)
    epoch = (await sub.subscribe(stream))["epoch"]
    pub = await Client.connect(token_url(srv))
    assert await append_many_without_fanout(stream, [f"lost-{n}" for n in range(1, 11)]) == list(range(1, 11))
    assert (await publish_until_ack(pub, stream, "eleven", "m11"))["seq"] == 11
    frames = await collect(sub, stream, 11)
    assert frames[0] == {"type": "subscribed", "stream": stream, "epoch": epoch, "seq": 6, "recovered": False}
    assert [(f["seq"], f["data"]) for f in frames[1:]] == [(n, f"lost-{n}") for n in range(7, 11)] + [(11, "eleven")]

    # The same when nothing follows the lost messages: the position check finds them.
    assert await append_many_without_fanout(stream, [f"lost-{n}" for n in range(12, 20)]) == list(range(12, 20))
    frames = await collect(sub, stream, 19)
    assert frames[0] == {"type": "subscribed", "stream": stream, "epoch": epoch, "seq": 14, "recovered": False}
    assert [(f["seq"], f["data"]) for f in frames[1:]] == [(n, f"lost-{n}") for n in range(15, 20)]
    for c in (sub, pub):
        await c.close()


async def test_backlog_list_gone_with_the_counter_kept_says_recovered_false(start_server) -> None:
    """Lost pub/sub messages whose backlog list was then deleted (evicted) while the
    counter survived: the position check tells the subscriber `recovered: false` at the
    counter, then delivery goes on from there."""
    srv = start_server("uvicorn", RT_PUBLISH_RATE="0")
    stream = "live:listgone"
    sub = await Client.connect(srv.ws)
    epoch = (await sub.subscribe(stream))["epoch"]
    backlog = runtime.current().backlog
    keys = stream_keys(backlog.prefix, stream, backlog.buckets)
    ts = int(time.time() * 1000)
    async with backlog.redis.pipeline(transaction=True) as pipe:  # no position check sees the list
        for n in (1, 2, 3):
            args = [new_epoch(), frame_head(stream), message_tail(f"lost-{n}", SERVER, ts), backlog.size, backlog.ttl, 60, stream]
            await backlog._append(keys=[keys.meta, keys.log, "", "", ""], args=args, client=pipe)
        pipe.delete(keys.log)
        await pipe.execute()
    frame = await sub.recv(20)
    assert frame == {"type": "subscribed", "stream": stream, "epoch": epoch, "seq": 3, "recovered": False}
    pub = await Client.connect(token_url(srv))
    assert (await publish_until_ack(pub, stream, "four", "m4"))["seq"] == 4
    frames = await collect(sub, stream, 4)
    assert [(f["type"], f["seq"]) for f in frames] == [("message", 4)]
    for c in (sub, pub):
        await c.close()
