"""Private groups, direct messages, edits and deletions, moderation, mentions and unread
counts (docs/protocol.md 1.1), over the WebSocket and HTTP on two server processes.

People act with tokens whose `sub` is their Django user id (a token with `sub` counts as
that user); moderation by staff goes through a staff session, as tokens never carry staff.
Every rule has its refused case.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import SignedIn
from tests.tokens import mint
from tests.wsclient import Client

pytestmark = pytest.mark.slow

#: Rights re-read at least this often; every change is pushed at once besides.
FAST = {"RT_RIGHTS_TTL": "2"}


def token(person: SignedIn) -> str:
    return mint(sub=person.user_id, name=person.username)


def bearer(person: SignedIn) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(person)}"}


async def ws(server: Any, person: SignedIn) -> Client:
    return await Client.connect(f"{server.ws}?token={token(person)}")


async def refused(client: Client, frame: dict[str, Any], code: str) -> dict[str, Any]:
    reply = await client.request(frame)
    assert reply["type"] == "error" and reply["code"] == code, reply
    return reply


async def publish(client: Client, stream: str, data: Any, id: str) -> dict[str, Any]:
    reply = await client.request({"type": "publish", "stream": stream, "data": data, "id": id})
    while reply["type"] not in ("ack", "error"):
        reply = await client.recv()
    return reply


async def until(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = await check()
        if got or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.1)


async def test_a_group_from_creation_to_a_removed_member(start_server: Any, users: Any) -> None:
    a, b = start_server("uvicorn", **FAST), start_server("uvicorn", **FAST)
    owner, member, outsider = users("own", "mem", "out")
    async with httpx.AsyncClient() as http:
        made = await http.put(f"{a.http}/api/groups/team", json={"title": "The team"}, headers=bearer(owner))
        assert made.status_code == 201 and made.json() == {"group": "team", "owner": owner.user_id, "title": "The team"}
        again = await http.put(f"{b.http}/api/groups/team", json={"title": "The team"}, headers=bearer(owner))
        assert again.status_code == 200
        taken = await http.put(f"{b.http}/api/groups/team", json={}, headers=bearer(outsider))
        assert taken.status_code == 409 and taken.json()["error"]["code"] == "conflict"
        bad = await http.put(f"{a.http}/api/groups/team", json={"title": 5}, headers=bearer(owner))
        assert bad.status_code == 400
        # Only the owner (or staff) adds members.
        nope = await http.put(f"{a.http}/api/groups/team/members/{member.user_id}", headers=bearer(outsider))
        assert nope.status_code == 403
        added = await http.put(f"{b.http}/api/groups/team/members/{member.user_id}", headers=bearer(owner))
        assert added.status_code == 200
        listed = (await http.get(f"{a.http}/api/groups/team/members", headers=bearer(member))).json()
        assert listed["owner"] == owner.user_id and {m["id"] for m in listed["members"]} == {owner.user_id, member.user_id}
        assert (await http.get(f"{a.http}/api/groups/team/members", headers=bearer(outsider))).status_code == 403

        watcher, reader, stranger = await ws(a, owner), await ws(b, member), await ws(a, outsider)
        await watcher.subscribe("group:team")
        await reader.subscribe("group:team")
        # Outsiders get `forbidden`, whether the group exists or not, with the same words.
        there = await refused(stranger, {"type": "subscribe", "stream": "group:team"}, "forbidden")
        absent = await refused(stranger, {"type": "subscribe", "stream": "group:nothere"}, "forbidden")
        assert there["message"].replace("team", "X") == absent["message"].replace("nothere", "X")
        await refused(stranger, {"type": "publish", "stream": "group:team", "data": {"text": "hi"}, "id": "s1"}, "forbidden")
        for path in ("messages", "messages?before=5", "messages?since=0", "occupancy"):
            for name in ("team", "nothere"):
                answer = await http.get(f"{b.http}/api/streams/group:{name}/{path}", headers=bearer(outsider))
                assert answer.status_code == 403 and answer.json()["error"]["code"] == "forbidden", (path, name)
        assert (await http.post(f"{a.http}/api/streams/group:team/messages", json={"data": {"text": "x"}}, headers=bearer(outsider))).status_code == 403

        ack = await publish(reader, "group:team", {"text": "hello team"}, "m1")
        assert ack["type"] == "ack"
        (seen,) = await watcher.messages("group:team", 1)
        assert seen["data"] == {"text": "hello team"} and seen["sender"]["id"] == member.user_id
        page = await http.get(f"{a.http}/api/streams/group:team/messages", headers=bearer(member))
        assert page.status_code == 200 and [m["data"] for m in page.json()["messages"]] == [{"text": "hello team"}]

        # Removed on one process: its subscription on the other is cut within 5 s.
        removed = await http.delete(f"{a.http}/api/groups/team/members/{member.user_id}", headers=bearer(owner))
        assert removed.status_code == 200
        started = time.monotonic()
        error = await reader.recv_type("error", timeout=5.0)
        assert error["code"] == "forbidden" and error["stream"] == "group:team"
        assert (await reader.recv_type("unsubscribed", timeout=2.0))["stream"] == "group:team"
        assert time.monotonic() - started < 5.0
        await refused(reader, {"type": "publish", "stream": "group:team", "data": {"text": "still?"}, "id": "m2"}, "forbidden")
        await refused(reader, {"type": "subscribe", "stream": "group:team"}, "forbidden")
        for srv in (a, b):
            assert (await http.get(f"{srv.http}/api/streams/group:team/messages", headers=bearer(member))).status_code == 403
            assert (await http.get(f"{srv.http}/api/streams/group:team/messages?before=9", headers=bearer(member))).status_code == 403
        # The owner cannot be removed; a member may leave; an outsider removes nobody.
        assert (await http.delete(f"{a.http}/api/groups/team/members/{owner.user_id}", headers=bearer(owner))).status_code == 400
        await http.put(f"{a.http}/api/groups/team/members/{outsider.user_id}", headers=bearer(owner))
        assert (await http.delete(f"{b.http}/api/groups/team/members/{owner.user_id}", headers=bearer(member))).status_code == 403
        assert (await http.delete(f"{b.http}/api/groups/team/members/{outsider.user_id}", headers=bearer(outsider))).status_code == 200
        left = (await http.get(f"{a.http}/api/groups/team/members", headers=bearer(owner))).json()
        assert [m["id"] for m in left["members"]] == [owner.user_id]
    for client in (watcher, reader, stranger):
        await client.close()


async def test_direct_messages_between_two_people_and_the_bell(start_server: Any, users: Any) -> None:
    a, b = start_server("uvicorn"), start_server("uvicorn")
    ann, bob, eve = users("ann", "bob", "eve")
    pair = sorted([ann.user_id, bob.user_id])
    stream = f"dm:{pair[0]}.{pair[1]}"
    sender, other = await ws(a, ann), await ws(b, eve)
    for name in (f"dm:{pair[1]}.{pair[0]}", f"dm:{ann.user_id}.{ann.user_id}", f"dm:{ann.user_id}", "dm:1.2.3", "dm:.5"):
        await refused(sender, {"type": "subscribe", "stream": name}, "bad_request")
    await refused(other, {"type": "subscribe", "stream": stream}, "forbidden")
    await refused(other, {"type": "publish", "stream": stream, "data": {"text": "psst"}, "id": "e"}, "forbidden")
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{a.http}/api/streams/dm:{pair[1]}.{pair[0]}/messages", headers=bearer(ann))).status_code == 400
        assert (await http.get(f"{a.http}/api/streams/{stream}/messages", headers=bearer(eve))).status_code == 403

        await sender.subscribe(stream)
        assert (await publish(sender, stream, {"text": "lunch?"}, "d1"))["type"] == "ack"

        async def bell() -> list[dict[str, Any]]:
            page = (await http.get(f"{b.http}/api/streams/user:{bob.user_id}/messages", headers=bearer(bob))).json()
            return page["messages"]

        rung = await until(bell)
        assert len(rung) == 1 and rung[0]["data"]["title"] == f"New message from {ann.username}"
        assert rung[0]["data"]["url"].endswith(f"/dm/{ann.user_id}/")
        # With the conversation open, no bell: the message is on the screen already.
        reader = await ws(b, bob)
        await reader.subscribe(stream, history=10)
        assert (await reader.messages(stream, 1))[0]["data"] == {"text": "lunch?"}
        await asyncio.sleep(0.5)  # the presence lease is written after `subscribed`
        assert (await publish(sender, stream, {"text": "at noon"}, "d2"))["type"] == "ack"
        await reader.messages(stream, 1)
        await asyncio.sleep(1.0)
        assert len(await bell()) == 1
        # Both have it in their list of conversations.
        for person, srv in ((ann, a), (bob, b)):
            listed = (await http.get(f"{srv.http}/api/conversations", headers=bearer(person))).json()["conversations"]
            assert [c["stream"] for c in listed] == [stream] and listed[0]["kind"] == "dm"
        await reader.close()
    await sender.close()
    await other.close()


async def test_edits_and_deletions_only_by_their_author_or_a_moderator(start_server: Any, users: Any, signed_in: Any) -> None:
    a, b = start_server("uvicorn"), start_server("uvicorn")
    ann, bob = users("ann", "bob")
    staff = signed_in(staff=True)
    room = "room:edits"
    writer, other = await ws(a, ann), await ws(b, bob)
    await other.subscribe(room)
    first = await publish(writer, room, {"text": "helo"}, "t1")
    theirs = await publish(other, room, {"text": "bob's"}, "t2")
    bad = [
        ({"edit": first["seq"]}, "bad_request"),
        ({"edit": "1", "text": "x"}, "bad_request"),
        ({"edit": first["seq"], "text": 5}, "bad_request"),
        ({"edit": first["seq"], "text": "x", "more": 1}, "bad_request"),
        ({"delete": 0}, "bad_request"),
        ({"delete": True}, "bad_request"),
        ({"delete": 999}, "bad_request"),  # no such message
        ({"edit": first["seq"], "text": "hijacked"}, "forbidden"),  # someone else's
        ({"delete": first["seq"]}, "forbidden"),
    ]
    for n, (data, code) in enumerate(bad):
        reply = await publish(other, room, data, f"bad{n}")
        assert reply["type"] == "error" and reply["code"] == code, (data, reply)
    edit = await publish(writer, room, {"edit": first["seq"], "text": "hello"}, "t3")
    assert edit["type"] == "ack"
    reply = await publish(writer, room, {"edit": edit["seq"], "text": "x"}, "t4")
    assert reply["code"] == "bad_request"  # an edit is not a chat message to edit
    gone = await publish(writer, room, {"delete": first["seq"]}, "t5")
    assert gone["type"] == "ack"
    # What reached the other socket, up to the deletion: its own `publish` calls above read
    # past the message frames that came before their replies, so the count is not fixed.
    live: list[dict[str, Any]] = []
    while not live or live[-1]["data"] != {"delete": first["seq"]}:
        frame = await other.recv(10)
        if frame["type"] == "message" and frame["stream"] == room:
            live.append(frame)
    assert [m["data"] for m in live][-2:] == [{"edit": first["seq"], "text": "hello"}, {"delete": first["seq"]}]
    assert [m["seq"] for m in live] == sorted(m["seq"] for m in live)  # in order
    async with httpx.AsyncClient() as http:
        url = f"{b.http}/api/streams/{room}/messages"
        refused_http = await http.post(url, json={"data": {"delete": theirs["seq"]}}, headers=bearer(ann))
        assert refused_http.status_code == 403
        history = (await http.get(url)).json()["messages"]
        assert [m["data"] for m in history][-2:] == [{"edit": first["seq"], "text": "hello"}, {"delete": first["seq"]}]
        # Staff moderate every room: a staff session deletes bob's message.
        secret = "k" * 32
        http.cookies.set("sessionid", staff.session_key)
        http.cookies.set("csrftoken", secret)
        done = await http.post(
            url, json={"data": {"delete": theirs["seq"]}}, headers={"X-CSRFToken": secret, "Origin": b.http}
        )
        assert done.status_code == 201, done.text
    await writer.close()
    await other.close()


async def test_mutes_and_bans_reach_open_sockets_within_five_seconds(start_server: Any, users: Any) -> None:
    a, b = start_server("uvicorn", **FAST), start_server("uvicorn", **FAST)
    owner, member, bystander = users("own", "mem", "by")
    async with httpx.AsyncClient() as http:
        await http.put(f"{a.http}/api/groups/mods", json={"title": ""}, headers=bearer(owner))
        for person in (member, bystander):
            await http.put(f"{a.http}/api/groups/mods/members/{person.user_id}", headers=bearer(owner))
        talker = await ws(b, member)
        await talker.subscribe("group:mods")
        assert (await publish(talker, "group:mods", {"text": "one"}, "p1"))["type"] == "ack"
        # Only moderators mute: a member cannot, the owner can.
        url = f"{a.http}/api/streams/group:mods/mutes/{member.user_id}"
        assert (await http.put(url, headers=bearer(bystander))).status_code == 403
        assert (await http.put(f"{a.http}/api/streams/live:x/mutes/{member.user_id}", headers=bearer(owner))).status_code == 400
        muted = await http.put(url, headers=bearer(owner))
        assert muted.status_code == 200 and muted.json() == {"stream": "group:mods", "user": member.user_id, "kind": "mute", "on": True}

        async def refused_now() -> bool:
            reply = await publish(talker, "group:mods", {"text": "am I muted?"}, f"p{time.monotonic()}")
            return reply["type"] == "error" and reply["code"] == "forbidden"

        assert await until(refused_now, 5.0)
        http_refusal = await http.post(
            f"{b.http}/api/streams/group:mods/messages", json={"data": {"text": "x"}}, headers=bearer(member)
        )
        assert http_refusal.status_code == 403
        assert (await http.delete(url, headers=bearer(owner))).status_code == 200

        async def allowed_now() -> bool:
            reply = await publish(talker, "group:mods", {"text": "back"}, f"q{time.monotonic()}")
            return reply["type"] == "ack"

        assert await until(allowed_now, 5.0)
        # A ban cuts the open subscription and refuses a new one.
        assert (await http.put(f"{a.http}/api/streams/group:mods/bans/{member.user_id}", headers=bearer(owner))).status_code == 200
        error = await talker.recv_type("error", timeout=5.0)
        assert error["code"] == "forbidden" and error["stream"] == "group:mods"
        await talker.recv_type("unsubscribed")
        await refused(talker, {"type": "subscribe", "stream": "group:mods"}, "forbidden")
        # The owner moderates only the group: not a public room.
        assert (await http.put(f"{a.http}/api/streams/room:lobby/bans/{member.user_id}", headers=bearer(owner))).status_code == 403
    await talker.close()


async def test_mentions_notify_only_people_who_may_read(start_server: Any, users: Any) -> None:
    a, b = start_server("uvicorn"), start_server("uvicorn")
    ann, bob, carol = users("ann", "bob", "carol")
    writer = await ws(a, ann)
    async with httpx.AsyncClient() as http:

        async def feed(person: SignedIn) -> list[dict[str, Any]]:
            page = await http.get(f"{b.http}/api/streams/user:{person.user_id}/messages", headers=bearer(person))
            return page.json()["messages"]

        said = await publish(writer, "room:general", {"text": f"hey @{bob.username}, and @nobody-at-all."}, "m1")
        rung = await until(lambda: feed(bob))
        assert len(rung) == 1
        note = rung[0]["data"]
        assert note["title"] == f"{ann.username} mentioned you in #general"
        assert note["url"].endswith(f"/rooms/general/#m{said['seq']}") and note["url"].startswith("http")
        # In a group carol is not in, mentioning her tells her nothing.
        await http.put(f"{a.http}/api/groups/hush", json={}, headers=bearer(ann))
        await http.put(f"{a.http}/api/groups/hush/members/{bob.user_id}", headers=bearer(ann))
        await publish(writer, "group:hush", {"text": f"@{carol.username} @{bob.username} secret"}, "m2")
        rung = await until(lambda: _longer(feed(bob), 1))
        assert rung[-1]["data"]["url"].endswith("/groups/hush/#m1")
        assert await feed(carol) == []
        # One's own name is no mention; an edit does not notify again.
        await publish(writer, "room:general", {"text": f"@{ann.username} note to self"}, "m3")
        await publish(writer, "room:general", {"edit": said["seq"], "text": f"hey @{carol.username}"}, "m4")
        await asyncio.sleep(1.0)
        assert await feed(ann) == [] and await feed(carol) == []
    await writer.close()


async def _longer(got: Any, than: int) -> Any:
    found = await got
    return found if len(found) > than else None


async def test_unread_counts_follow_the_read_position_on_every_tab(start_server: Any, users: Any) -> None:
    a, b = start_server("uvicorn"), start_server("uvicorn")
    ann, bob = users("ann", "bob")
    writer, tab = await ws(a, ann), await ws(b, bob)
    await tab.subscribe(f"user:{bob.user_id}")
    async with httpx.AsyncClient() as http:
        url = f"{a.http}/api/read/room:news"
        assert (await http.get(url, headers=bearer(bob))).json() == {"stream": "room:news", "epoch": "", "seq": 0}
        first = await publish(writer, "room:news", {"text": "one"}, "n1")
        moved = await http.post(url, json={"epoch": first["epoch"], "seq": first["seq"]}, headers=bearer(bob))
        assert moved.json() == {"stream": "room:news", "epoch": first["epoch"], "seq": first["seq"]}
        frame = await tab.recv_type("read")
        assert frame == {"type": "read", "stream": "room:news", "epoch": first["epoch"], "seq": first["seq"]}
        for n in range(3):
            await publish(writer, "room:news", {"text": f"more {n}"}, f"n{n + 2}")
        listed = (await http.get(f"{b.http}/api/conversations", headers=bearer(bob))).json()["conversations"]
        assert [(c["stream"], c["unread"], c["title"], c["url"]) for c in listed] == [("room:news", 3, "#news", "/rooms/news/")]
        # Refused: backwards, another epoch, past the latest, bad bodies, someone else's DM.
        back = await http.post(url, json={"epoch": first["epoch"], "seq": 0}, headers=bearer(bob))
        assert back.json()["seq"] == first["seq"]
        other = await http.post(url, json={"epoch": "old", "seq": 3}, headers=bearer(bob))
        assert other.json()["seq"] == first["seq"]
        far = await http.post(url, json={"epoch": first["epoch"], "seq": 99}, headers=bearer(bob))
        assert far.json()["seq"] == 4
        for body in ({"epoch": first["epoch"]}, {"epoch": "", "seq": 1}, {"epoch": first["epoch"], "seq": -1}, [1]):
            assert (await http.post(url, json=body, headers=bearer(bob))).status_code == 400, body
        assert (await http.post(url, json={"epoch": "e", "seq": 1})).status_code == 403  # nobody signed in
        assert (await http.get(f"{a.http}/api/read/live:scores", headers=bearer(bob))).status_code == 400
        assert (await http.get(f"{a.http}/api/read/dm:x1.x2", headers=bearer(bob))).status_code == 403
        listed = (await http.get(f"{a.http}/api/conversations", headers=bearer(bob))).json()["conversations"]
        assert listed[0]["unread"] == 0
        assert (await tab.recv_type("read"))["seq"] == 4
    await writer.close()
    await tab.close()
