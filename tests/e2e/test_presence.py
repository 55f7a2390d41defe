"""Presence and typing on room streams, across server processes (protocol extensions)."""

from __future__ import annotations

import asyncio

from tests.tokens import mint
from tests.wsclient import Client


async def test_presence_join_leave_and_typing_across_processes(start_server) -> None:
    a, b = start_server("uvicorn"), start_server("uvicorn")
    watcher = await Client.connect(a.ws + "?token=" + mint(sub="1", name="ann"))
    await watcher.subscribe("room:here")
    joined = await watcher.recv_type("presence")
    assert joined == {"type": "presence", "stream": "room:here", "event": "join", "user": {"id": "1", "name": "ann"}}

    bob = await Client.connect(b.ws + "?token=" + mint(sub="2", name="bob"))
    await bob.subscribe("room:here")
    event = await watcher.recv_type("presence")
    assert event["event"] == "join" and event["user"] == {"id": "2", "name": "bob"}

    await bob.send({"type": "presence", "stream": "room:here"})
    listing = await bob.recv_type("presence")
    while "members" not in listing:
        listing = await bob.recv_type("presence")
    assert listing["members"] == [
        {"id": "1", "name": "ann", "connections": 1},
        {"id": "2", "name": "bob", "connections": 1},
    ]

    await bob.send({"type": "typing", "stream": "room:here"})
    typing = await watcher.recv_type("typing")
    assert typing["user"] == {"id": "2", "name": "bob"}

    await bob.close()
    left = await watcher.recv_type("presence")
    assert left["event"] == "leave" and left["user"]["id"] == "2"
    await watcher.close()


async def test_presence_of_a_dead_process_expires(start_server) -> None:
    import signal

    a = start_server("uvicorn", RT_PRESENCE_TTL="1")
    b = start_server("uvicorn", RT_POSITION_CHECK="0.2", RT_PRESENCE_TTL="1")
    ghost = await Client.connect(a.ws + "?token=" + mint(sub="9", name="ghost"))
    await ghost.subscribe("room:ghosts")
    watcher = await Client.connect(b.ws + "?token=" + mint(sub="1", name="ann"))
    await watcher.subscribe("room:ghosts")
    a.stop(signal.SIGKILL)  # no leave is sent: the lease must run out
    left = None
    for _ in range(20):
        frame = await watcher.recv_type("presence", timeout=60)
        if frame.get("event") == "leave":
            left = frame
            break
    assert left is not None and left["user"] == {"id": "9", "name": "ghost"}
    await watcher.send({"type": "presence", "stream": "room:ghosts"})
    listing = await watcher.recv_type("presence")
    while "members" not in listing:
        listing = await watcher.recv_type("presence")
    assert [m["id"] for m in listing["members"]] == ["1"]
    await watcher.close()


async def test_presence_and_typing_refuse_bad_requests(start_server) -> None:
    server = start_server("uvicorn")
    anon = await Client.connect(server.ws)
    reply = await anon.request({"type": "presence", "stream": "room:nope"})
    assert reply["code"] == "bad_request" and reply["stream"] == "room:nope"
    reply = await anon.request({"type": "presence", "stream": "live:x"})
    assert reply["code"] == "bad_request"
    await anon.subscribe("room:open")
    reply = await anon.request({"type": "typing", "stream": "room:open"})
    assert reply["code"] == "forbidden"
    # Presence queries read the whole member set: a burst of 5, then 1 per second.
    replies = [await anon.request({"type": "presence", "stream": "room:open"}) for _ in range(6)]
    assert [r["type"] for r in replies[:5]] == ["presence"] * 5
    assert replies[5]["type"] == "error" and replies[5]["code"] == "rate_limited" and replies[5]["retry_after"] > 0
    assert await anon.request({"type": "ping"}) == {"type": "pong"}
    await anon.close()
    await asyncio.sleep(0)
