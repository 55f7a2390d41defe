"""Presence, occupancy and typing on room streams, across server processes
(docs/protocol.md, "Presence" and "Occupancy")."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import httpx

from tests.tokens import mint
from tests.wsclient import Client

QUICK = {"RT_PRESENCE_INTERVAL": "0.2"}


async def changes(client: Client, stream: str, timeout: float = 5.0) -> dict[str, Any]:
    """The next presence change frame (`joined`/`left`) of `stream`."""
    while True:
        frame = await client.recv_type("presence", timeout)
        if frame["stream"] == stream and "members" not in frame:
            return frame


async def listing(client: Client, stream: str) -> dict[str, Any]:
    await client.send({"type": "presence", "stream": stream})
    while True:
        frame = await client.recv_type("presence")
        if "members" in frame:
            return frame


def ids(users: list[dict[str, Any]]) -> list[str]:
    return [u["id"] for u in users]


async def test_presence_join_leave_and_typing_across_processes(start_server) -> None:
    a, b = start_server("uvicorn", **QUICK), start_server("uvicorn", **QUICK)
    watcher = await Client.connect(a.ws + "?token=" + mint(sub="1", name="ann"))
    await watcher.subscribe("room:here")
    joined = await changes(watcher, "room:here")
    assert joined == {
        "type": "presence", "stream": "room:here", "joined": [{"id": "1", "name": "ann", "v": joined["joined"][0]["v"]}],
        "left": [], "total": 1,
    }

    bob = await Client.connect(b.ws + "?token=" + mint(sub="2", name="bob"))
    await bob.subscribe("room:here")
    event = await changes(watcher, "room:here")
    assert [{"id": u["id"], "name": u["name"]} for u in event["joined"]] == [{"id": "2", "name": "bob"}]
    assert event["joined"][0]["v"] > joined["joined"][0]["v"]

    answer = await listing(bob, "room:here")
    assert answer["members"] == [
        {"id": "1", "name": "ann", "connections": 1},
        {"id": "2", "name": "bob", "connections": 1},
    ]
    assert answer["total"] == 2 and answer["v"] >= event["joined"][0]["v"]

    await bob.send({"type": "typing", "stream": "room:here"})
    typing = await watcher.recv_type("typing")
    assert typing["user"] == {"id": "2", "name": "bob"}

    await bob.close()
    left = await changes(watcher, "room:here")
    assert ids(left["left"]) == ["2"] and left["joined"] == [] and left["total"] == 1
    await watcher.close()


async def test_presence_of_a_dead_process_expires(start_server) -> None:
    a = start_server("uvicorn", RT_PRESENCE_TTL="1", **QUICK)
    b = start_server("uvicorn", RT_POSITION_CHECK="0.2", RT_PRESENCE_TTL="1", **QUICK)
    ghosts = [await Client.connect(a.ws + "?token=" + mint(sub=f"9{n}", name=f"ghost {n}")) for n in range(3)]
    for ghost in ghosts:
        await ghost.subscribe("room:ghosts")
    watcher = await Client.connect(b.ws + "?token=" + mint(sub="1", name="ann"))
    await watcher.subscribe("room:ghosts", occupancy=True)
    while (await watcher.recv_type("occupancy"))["connections"] != 4:
        pass  # the other process writes its count within its interval
    a.stop(signal.SIGKILL)  # no leave is sent: the leases must run out
    started, gone = time.monotonic(), set()
    while gone != {"90", "91", "92"}:
        frame = await changes(watcher, "room:ghosts", timeout=60)
        gone |= set(ids(frame["left"]))
    assert time.monotonic() - started < 5  # the lease (1 s, at least 3 checks) and a sweep
    assert [m["id"] for m in (await listing(watcher, "room:ghosts"))["members"]] == ["1"]
    async with httpx.AsyncClient() as http:  # the dead process stops counting within its lease
        while time.monotonic() - started < 5:
            figures = (await http.get(f"{b.http}/api/streams/room:ghosts/occupancy")).json()
            if figures["connections"] == 1:
                break
            await asyncio.sleep(0.1)
    assert figures == {"stream": "room:ghosts", "connections": 1, "users": 1}
    await watcher.close()


async def test_300_people_fill_a_room_on_two_processes_with_few_frames(start_server) -> None:
    a, b = start_server("uvicorn", **QUICK), start_server("uvicorn", **QUICK)
    observers = [await Client.connect(srv.ws + "?token=" + mint(sub=f"o{n}", name=f"observer {n}")) for n, srv in enumerate((a, b))]
    for observer in observers:
        await observer.subscribe("room:crowd")
    people = []
    for n in range(300):
        srv = (a, b)[n % 2]
        people.append(await Client.connect(srv.ws + "?token=" + mint(sub=f"p{n}", name=f"person {n}")))
    await asyncio.gather(*(p.subscribe("room:crowd") for p in people))
    await asyncio.sleep(1.0)  # the last changes are sent
    for observer in observers:
        frames = []
        while True:
            try:
                frames.append(await observer.recv(timeout=0.5))
            except TimeoutError:
                break
        presence = [f for f in frames if f["type"] == "presence"]
        # Joins are sent per user while the room is under the cap (100), batched per
        # interval and process: a handful of frames, not one per join (let alone N^2).
        assert len(presence) <= 40, len(presence)
        assert sum(len(f["joined"]) for f in presence) <= 100
        answer = await listing(observer, "room:crowd")
        assert answer["total"] == 302 and len(answer["members"]) == 100
    async with httpx.AsyncClient() as http:
        for srv in (a, b):
            figures = (await http.get(f"{srv.http}/api/streams/room:crowd/occupancy")).json()
            assert figures == {"stream": "room:crowd", "connections": 302, "users": 302}
    for client in people + observers:
        await client.close()


async def test_one_person_in_twenty_tabs_on_two_processes_closing_nineteen_is_no_leave(start_server) -> None:
    a, b = start_server("uvicorn", **QUICK), start_server("uvicorn", **QUICK)
    watcher = await Client.connect(a.ws + "?token=" + mint(sub="w", name="watcher"))
    await watcher.subscribe("room:tabs")
    await changes(watcher, "room:tabs")  # its own join
    tabs = [await Client.connect((a, b)[n % 2].ws + "?token=" + mint(sub="t", name="tabby")) for n in range(20)]
    for tab in tabs:
        await tab.subscribe("room:tabs")
    for tab in tabs[1:]:
        await tab.close()
    seen: list[dict[str, Any]] = []
    try:
        while True:
            seen.append(await changes(watcher, "room:tabs", timeout=1.5))
    except TimeoutError:
        pass
    assert [ids(f["joined"]) for f in seen] == [["t"]] and all(f["left"] == [] for f in seen), seen
    answer = await listing(watcher, "room:tabs")
    assert {"id": "t", "name": "tabby", "connections": 1} in answer["members"]
    await tabs[0].close()
    assert ids((await changes(watcher, "room:tabs"))["left"]) == ["t"]
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
