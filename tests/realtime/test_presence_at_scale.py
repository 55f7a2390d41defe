"""Presence per user at O(1) per change, batched, capped; and occupancy. In process: the
real consumer and hub against the real test Redis."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.test import AsyncClient

from realtime import runtime
from realtime.consumers import StreamConsumer
from tests.tokens import mint

app = StreamConsumer.as_asgi()
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def quick(settings: Any) -> Any:
    settings.RT_PRESENCE_INTERVAL = 0.2
    yield
    await runtime.close_current()


async def connect(**claims: Any) -> WebsocketCommunicator:
    ws = WebsocketCommunicator(app, "/ws/" + (f"?token={mint(**claims)}" if claims else ""))
    assert (await ws.connect())[0]
    return ws


async def subscribe(ws: WebsocketCommunicator, stream: str, **extra: Any) -> dict[str, Any]:
    await ws.send_to(text_data=json.dumps({"type": "subscribe", "stream": stream, **extra}))
    while True:
        frame = json.loads(await ws.receive_from())
        if frame["type"] == "subscribed":
            return frame  # type: ignore[no-any-return]


async def drain(ws: WebsocketCommunicator, quiet: float = 0.6) -> list[dict[str, Any]]:
    """Every frame until none comes for `quiet` seconds."""
    got = []
    while not await ws.receive_nothing(quiet):
        got.append(json.loads(await ws.receive_from()))
    return got


async def members(ws: WebsocketCommunicator, stream: str) -> dict[str, Any]:
    await ws.send_to(text_data=json.dumps({"type": "presence", "stream": stream}))
    while True:
        frame = json.loads(await ws.receive_from())
        if frame["type"] == "presence" and "members" in frame:
            return frame  # type: ignore[no-any-return]


async def test_one_user_in_twenty_tabs_closing_nineteen_shows_one_join_and_no_leave() -> None:
    stream = "room:tabs"
    observer = await connect(sub="obs", name="observer")
    await subscribe(observer, stream)
    tabs = [await connect(sub="u1", name="alice") for _ in range(20)]
    for ws in tabs:
        await subscribe(ws, stream)
    for ws in tabs[1:]:
        await ws.disconnect()
    frames = [f for f in await drain(observer) if f["type"] == "presence"]
    joined = [u for f in frames for u in f.get("joined", []) if u["id"] == "u1"]
    left = [u for f in frames for u in f.get("left", []) if u["id"] == "u1"]
    assert len(joined) == 1 and left == [], frames
    answer = await members(observer, stream)
    assert {"id": "u1", "name": "alice", "connections": 1} in answer["members"]
    await tabs[0].disconnect()
    frames = [f for f in await drain(observer) if f["type"] == "presence"]
    assert [u["id"] for f in frames for u in f.get("left", [])] == ["u1"]
    await observer.disconnect()


async def test_joins_are_batched_into_a_frame_per_interval() -> None:
    stream = "room:batch"
    observer = await connect(sub="obs", name="observer")
    await subscribe(observer, stream)
    await drain(observer, 0.3)
    people = [await connect(sub=f"p{n}", name=f"person {n}") for n in range(40)]
    for ws in people:
        await subscribe(ws, stream)
    frames = [f for f in await drain(observer) if f["type"] == "presence"]
    assert sorted(u["id"] for f in frames for u in f["joined"]) == sorted(f"p{n}" for n in range(40))
    assert len(frames) <= 5, len(frames)  # 40 joins, one frame per 0.2 s interval at most
    assert frames[-1]["total"] == 41
    versions = [u["v"] for f in frames for u in f["joined"]]
    assert len(set(versions)) == 40
    for ws in [*people, observer]:
        await ws.disconnect()


async def test_past_the_member_cap_a_room_sends_counts_not_members(settings: Any) -> None:
    settings.RT_PRESENCE_MAX_MEMBERS = 5
    stream = "room:big"
    observer = await connect(sub="obs", name="observer")
    await subscribe(observer, stream, occupancy=True)
    await drain(observer, 0.3)
    people = []
    for n in range(8):
        people.append(await connect(sub=f"b{n}", name=f"b{n}"))
        await subscribe(people[-1], stream)
        await asyncio.sleep(0.25)  # one interval each: every join would get its own frame
    frames = await drain(observer)
    changes = [f for f in frames if f["type"] == "presence"]
    assert all(f["total"] <= 5 for f in changes), changes
    assert sum(len(f["joined"]) for f in changes) == 4  # the observer and 4 make 5; then counts only
    occupancy = [f for f in frames if f["type"] == "occupancy"]
    assert occupancy and occupancy[-1] == {"type": "occupancy", "stream": stream, "connections": 9, "users": 9}
    answer = await members(observer, stream)
    assert answer["total"] == 9 and len(answer["members"]) == 5
    for ws in [*people, observer]:
        await ws.disconnect()


async def test_occupancy_on_subscribe_on_change_and_over_http() -> None:
    stream = "live:match"
    viewer = await connect(sub="v", name="viewer")
    await subscribe(viewer, stream, occupancy=True)
    first = json.loads(await viewer.receive_from())
    assert first == {"type": "occupancy", "stream": stream, "connections": 1, "users": 1}
    guests = [await connect() for _ in range(5)]
    for ws in guests:
        await subscribe(ws, stream)
    same_user = await connect(sub="v", name="viewer")
    await subscribe(same_user, stream)
    frames = [f for f in await drain(viewer) if f["type"] == "occupancy"]
    assert frames[-1] == {"type": "occupancy", "stream": stream, "connections": 7, "users": 1}
    assert len(frames) <= 3  # at most once per interval
    got = await AsyncClient().get(f"/api/streams/{stream}/occupancy")
    assert got.status_code == 200 and got.json() == {"stream": stream, "connections": 7, "users": 1}
    for ws in guests:
        await ws.disconnect()
    frames = [f for f in await drain(viewer) if f["type"] == "occupancy"]
    assert frames[-1]["connections"] == 2
    forbidden = await AsyncClient().get("/api/streams/user:42/occupancy")
    assert forbidden.status_code == 403
    for ws in (viewer, same_user):
        await ws.disconnect()


async def test_a_leave_that_lands_during_the_renewal_is_not_undone(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.conf import settings

    from realtime.names import stream_keys

    stream, user = "room:race", {"id": "u", "name": "una"}
    hub = await runtime.current().hub()
    presence = hub.presence
    await presence.join(stream, user, "conn1")
    real_renew, left = presence._renew, []

    async def renew_after_a_leave(*args: Any, **kwargs: Any) -> Any:
        if not left:  # the renewal has taken its list of leases; the connection leaves now
            left.append(True)
            await presence.leave(stream, user, "conn1")
        return await real_renew(*args, **kwargs)

    monkeypatch.setattr(presence, "_renew", renew_after_a_leave)
    await presence.renew_and_sweep([stream])
    keys = stream_keys(settings.RT_KEY_PREFIX, stream, settings.RT_BUCKETS)
    redis = runtime.current().redis
    assert left and await redis.zcard(keys.presence) == 0 and await redis.hlen(keys.present_users) == 0
    assert (await hub.occupancy.figures([stream]))[0][1] == 0


def test_a_batch_keeps_the_total_of_its_newest_change_whatever_order_answers_resume() -> None:
    from realtime.presence import Changes

    changes = Changes()
    changes.count(150, 150)  # the later script's answer resumes first
    changes.count(99, 99)
    assert changes.total == 150
    changes.count(149, 151)  # a leave after both
    assert changes.total == 149
