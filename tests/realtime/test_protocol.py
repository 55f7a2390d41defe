"""Every client frame of docs/protocol.md in wrong forms, against a real server over real sockets.

Each bad frame gets its documented `error` (the code, and `id`/`stream` echoed where the
request had them) and the connection keeps working: a `ping` afterwards answers `pong`.
Only abuse closes: a binary frame (1003), a frame far over the limit or a flood (4508).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tests.tokens import mint
from tests.wsclient import Client

PUBLISHER = {"sub": "7", "name": "pat", "pubs": ["live:*"]}
LONG_NAME = "x" * 65

Case = tuple[Any, dict[str, Any]]

# (frame sent: a dict is JSON-encoded, a str is sent as is; the error fields expected)
BAD_FRAMES: list[Case] = [
    ("this is not json", {"code": "bad_request"}),
    ('{"type": "ping"', {"code": "bad_request"}),
    ("[1, 2, 3]", {"code": "bad_request"}),
    ('"subscribe"', {"code": "bad_request"}),
    ("42", {"code": "bad_request"}),
    ("null", {"code": "bad_request"}),
    ("", {"code": "bad_request"}),
    ({}, {"code": "bad_request"}),
    ({"stream": "room:a"}, {"code": "bad_request", "stream": "room:a"}),
    ({"type": "nope"}, {"code": "bad_request"}),
    ({"type": "SUBSCRIBE", "stream": "room:a"}, {"code": "bad_request", "stream": "room:a"}),
    ({"type": 5}, {"code": "bad_request"}),
    ({"type": None}, {"code": "bad_request"}),
    ({"type": "publish", "stream": "live:a", "data": 1, "id": "q", "extra": 1, "type2": 2}, None),  # valid: see below
    # subscribe
    ({"type": "subscribe"}, {"code": "bad_request"}),
    ({"type": "subscribe", "stream": 5}, {"code": "bad_request"}),
    ({"type": "subscribe", "stream": None}, {"code": "bad_request"}),
    ({"type": "subscribe", "stream": ["room:a"]}, {"code": "bad_request"}),
    ({"type": "subscribe", "stream": "lobby"}, {"code": "bad_request", "stream": "lobby"}),
    ({"type": "subscribe", "stream": "chat:lobby"}, {"code": "bad_request", "stream": "chat:lobby"}),
    ({"type": "subscribe", "stream": "room:"}, {"code": "bad_request", "stream": "room:"}),
    ({"type": "subscribe", "stream": ":lobby"}, {"code": "bad_request", "stream": ":lobby"}),
    ({"type": "subscribe", "stream": "room:a b"}, {"code": "bad_request", "stream": "room:a b"}),
    ({"type": "subscribe", "stream": "room:a:b"}, {"code": "bad_request", "stream": "room:a:b"}),
    ({"type": "subscribe", "stream": "room:caf\u00e9"}, {"code": "bad_request", "stream": "room:caf\u00e9"}),
    ({"type": "subscribe", "stream": "room:" + LONG_NAME}, {"code": "bad_request", "stream": "room:" + LONG_NAME}),
    ({"type": "subscribe", "stream": "ROOM:a"}, {"code": "bad_request", "stream": "ROOM:a"}),
    (
        {"type": "subscribe", "stream": "room:a", "history": 3, "since": {"epoch": "e", "seq": 1}},
        {"code": "bad_request", "stream": "room:a"},
    ),
    ({"type": "subscribe", "stream": "room:a", "history": -1}, {"code": "bad_request", "stream": "room:a"}),
    ({"type": "subscribe", "stream": "room:a", "history": "3"}, {"code": "bad_request", "stream": "room:a"}),
    ({"type": "subscribe", "stream": "room:a", "history": 1.5}, {"code": "bad_request", "stream": "room:a"}),
    ({"type": "subscribe", "stream": "room:a", "since": {"epoch": "e"}}, {"code": "bad_request", "stream": "room:a"}),
    ({"type": "subscribe", "stream": "room:a", "since": {"seq": 1}}, {"code": "bad_request", "stream": "room:a"}),
    (
        {"type": "subscribe", "stream": "room:a", "since": {"epoch": "e", "seq": -1}},
        {"code": "bad_request", "stream": "room:a"},
    ),
    (
        {"type": "subscribe", "stream": "room:a", "since": {"epoch": 5, "seq": 1}},
        {"code": "bad_request", "stream": "room:a"},
    ),
    ({"type": "subscribe", "stream": "room:a", "since": 3}, {"code": "bad_request", "stream": "room:a"}),
    ({"type": "subscribe", "stream": "user:99"}, {"code": "forbidden", "stream": "user:99"}),
    # unsubscribe
    ({"type": "unsubscribe"}, {"code": "bad_request"}),
    ({"type": "unsubscribe", "stream": 1}, {"code": "bad_request"}),
    ({"type": "unsubscribe", "stream": "nope:x"}, {"code": "bad_request", "stream": "nope:x"}),
    # publish
    ({"type": "publish", "stream": "live:a", "data": 1}, {"code": "bad_request", "stream": "live:a"}),
    ({"type": "publish", "stream": "live:a", "id": "p1"}, {"code": "bad_request", "stream": "live:a", "id": "p1"}),
    ({"type": "publish", "data": 1, "id": "p2"}, {"code": "bad_request", "id": "p2"}),
    ({"type": "publish", "stream": "live:a", "data": 1, "id": ""}, {"code": "bad_request", "stream": "live:a", "id": ""}),
    (
        {"type": "publish", "stream": "live:a", "data": 1, "id": "i" * 65},
        {"code": "bad_request", "stream": "live:a", "id": "i" * 65},
    ),
    ({"type": "publish", "stream": "live:a", "data": 1, "id": 7}, {"code": "bad_request", "stream": "live:a"}),
    ({"type": "publish", "stream": "live:a", "data": 1, "id": None}, {"code": "bad_request", "stream": "live:a"}),
    (
        {"type": "publish", "stream": "live:", "data": 1, "id": "p3"},
        {"code": "bad_request", "stream": "live:", "id": "p3"},
    ),
    (
        {"type": "publish", "stream": "tv:a", "data": 1, "id": "p4"},
        {"code": "bad_request", "stream": "tv:a", "id": "p4"},
    ),
    (
        {"type": "publish", "stream": "user:99", "data": 1, "id": "p5"},
        {"code": "forbidden", "stream": "user:99", "id": "p5"},
    ),
    # ping with a wrong extra shape is still a ping (unknown fields are ignored)
    ({"type": "ping", "stream": 5, "id": []}, None),
]


async def expect_pong(client: Client) -> None:
    await client.send({"type": "ping"})
    assert await client.recv() == {"type": "pong"}


async def test_every_bad_frame_gets_its_error_and_the_connection_keeps_working(start_server) -> None:
    srv = start_server("uvicorn", RT_BAD_FRAME_LIMIT="1000")
    client = await Client.connect(srv.ws + "?token=" + mint(**PUBLISHER))
    for frame, expected in BAD_FRAMES:
        await client.send(frame)
        reply = await client.recv()
        if expected is None:
            assert reply["type"] in ("ack", "pong"), (frame, reply)
        else:
            assert reply["type"] == "error", (frame, reply)
            assert isinstance(reply["message"], str) and reply["message"], reply
            got = {k: reply[k] for k in ("code", "id", "stream") if k in reply}
            assert got == expected, (frame, reply)
        await expect_pong(client)
    await client.close()


async def test_subscribe_rules(start_server) -> None:
    srv = start_server("uvicorn", RT_MAX_STREAMS="3")
    client = await Client.connect(srv.ws)
    first = await client.subscribe("room:one", extra_field={"ignored": True})
    assert first["recovered"] is True and first["seq"] == 0 and first["epoch"]

    again = await client.request({"type": "subscribe", "stream": "room:one"})
    assert again["type"] == "error" and again["code"] == "bad_request" and again["stream"] == "room:one"
    await expect_pong(client)

    await client.subscribe("room:two")
    await client.subscribe("room:three", history=10**9)  # over the cap: capped, not refused
    over = await client.request({"type": "subscribe", "stream": "room:four"})
    assert over["type"] == "error" and over["code"] == "bad_request" and over["stream"] == "room:four"
    await expect_pong(client)

    # unsubscribe of a stream the connection does not have answers all the same
    assert await client.request({"type": "unsubscribe", "stream": "room:never"}) == {
        "type": "unsubscribed",
        "stream": "room:never",
    }
    # after leaving one, there is room again; and the one left can be subscribed again
    assert (await client.request({"type": "unsubscribe", "stream": "room:one"}))["type"] == "unsubscribed"
    await client.subscribe("room:four")
    over = await client.request({"type": "subscribe", "stream": "room:one"})
    assert over["code"] == "bad_request"
    assert (await client.request({"type": "unsubscribe", "stream": "room:two"}))["type"] == "unsubscribed"
    assert (await client.subscribe("room:one"))["recovered"] is True
    await expect_pong(client)
    await client.close()


async def test_too_large_binary_and_abuse(start_server) -> None:
    srv = start_server("uvicorn")
    client = await Client.connect(srv.ws + "?token=" + mint(**PUBLISHER))
    big = "x" * (64 * 1024 + 10)
    reply = await client.request({"type": "publish", "stream": "live:big", "id": "big1", "data": big})
    assert reply["type"] == "error" and reply["code"] == "too_large"
    assert reply.get("id") == "big1" and reply.get("stream") == "live:big", reply
    reply = await client.request({"type": "publish", "data": big, "stream": "live:big", "id": "big2"})
    assert (reply["code"], reply.get("id"), reply.get("stream")) == ("too_large", "big2", "live:big")
    # Non-ASCII text: the limit is in bytes, not characters.
    reply = await client.request({"type": "publish", "stream": "live:big", "id": "big3", "data": "\u00e9" * 33_000})
    assert (reply["code"], reply.get("id")) == ("too_large", "big3")
    await expect_pong(client)
    # A frame just under the limit is stored.
    ok = await client.request({"type": "publish", "stream": "live:big", "id": "fits", "data": "y" * 60_000})
    assert ok["type"] == "ack" and ok["seq"] == 1
    await expect_pong(client)
    await client.close()

    # A binary frame closes with 1003.
    raw = await websockets.connect(srv.ws)
    await raw.send(b"\x00\x01binary")
    with pytest.raises(websockets.ConnectionClosed):
        await asyncio.wait_for(raw.recv(), 5)
    assert raw.close_code == 1003

    # A frame far over the limit closes with 4508.
    raw = await websockets.connect(srv.ws, max_size=None)
    await raw.send(json.dumps({"type": "ping", "pad": "z" * (300 * 1024)}))
    with pytest.raises(websockets.ConnectionClosed):
        await asyncio.wait_for(raw.recv(), 5)
    assert raw.close_code == 4508

    # A flood of bad frames that does not back off closes with 4508, after error frames.
    raw = await websockets.connect(srv.ws)
    errors = 0
    with pytest.raises(websockets.ConnectionClosed):
        for _ in range(500):
            await raw.send("not json")
        while True:
            frame = json.loads(await asyncio.wait_for(raw.recv(), 5))
            assert frame["type"] == "error" and frame["code"] == "bad_request"
            errors += 1
    assert raw.close_code == 4508 and errors >= 1


async def test_publish_over_the_rate_is_rate_limited(start_server) -> None:
    # PUBLISHER's `pubs` grant covers live:rate: it publishes at the backend rate.
    srv = start_server("uvicorn", RT_BACKEND_PUBLISH_RATE="2", RT_BACKEND_PUBLISH_BURST="3")
    client = await Client.connect(srv.ws + "?token=" + mint(**PUBLISHER))
    replies = []
    for i in range(6):
        replies.append(await client.request({"type": "publish", "stream": "live:rate", "data": i, "id": f"r{i}"}))
    acks = [r for r in replies if r["type"] == "ack"]
    limited = [r for r in replies if r["type"] == "error"]
    assert len(acks) >= 3 and limited, replies
    assert [a["seq"] for a in acks] == list(range(1, len(acks) + 1))
    for err in limited:
        assert err["code"] == "rate_limited" and err["stream"] == "live:rate" and err["id"].startswith("r")
        assert isinstance(err["retry_after"], int | float) and 0 < err["retry_after"] <= 1.0
    await expect_pong(client)
    # Waiting as told is enough: the same id, retried, is accepted once.
    await asyncio.sleep(limited[0]["retry_after"] + 0.05)
    retry = await client.request({"type": "publish", "stream": "live:rate", "data": "again", "id": limited[0]["id"]})
    assert retry["type"] == "ack" and retry["id"] == limited[0]["id"] and retry["seq"] == len(acks) + 1
    await client.close()


# --- fuzz ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
streams = st.one_of(
    st.sampled_from(["room:fuzz", "live:fuzz", "user:1", "user:2", "room:", "x:y", "room:a.b-c_d"]),
    st.text(max_size=20),
    json_values,
)
frame_types = st.one_of(
    st.sampled_from(["subscribe", "unsubscribe", "publish", "ping", "presence", "typing", "nope"]), json_values
)
fuzz_frames = st.one_of(
    st.fixed_dictionaries(
        {"type": frame_types},
        optional={
            "stream": streams,
            "id": st.one_of(st.text(max_size=70), json_values),
            "data": json_values,
            "history": st.one_of(st.integers(-5, 5), json_values),
            "since": st.one_of(
                st.fixed_dictionaries({}, optional={"epoch": st.text(max_size=10) | json_values, "seq": st.integers(-3, 3) | json_values}),
                json_values,
            ),
        },
    ),
    json_values,
).map(json.dumps) | st.text(max_size=40)

KNOWN_TYPES = {"subscribed", "message", "unsubscribed", "ack", "error", "pong", "presence", "typing"}


async def fuzz_once(url: str, frames: list[str]) -> None:
    client = await Client.connect(url)
    try:
        for text in frames:
            await client.send(text)
        await client.send({"type": "ping"})
        while True:
            reply = await client.recv()
            assert isinstance(reply, dict) and reply.get("type") in KNOWN_TYPES, reply
            if reply["type"] == "error":
                assert reply["code"] in {"bad_request", "forbidden", "too_large", "rate_limited"}, reply
            if reply == {"type": "pong"}:
                break
        assert client.ws.close_code is None
    finally:
        await client.close()


@pytest.mark.parametrize("kind", ["uvicorn"])
def test_fuzzed_frames_never_break_the_connection(kind: str, start_server) -> None:
    srv = start_server(kind, RT_BAD_FRAME_LIMIT="100000", RT_PUBLISH_RATE="0", RT_BACKEND_PUBLISH_RATE="0")
    url = srv.ws + "?token=" + mint(sub="1", name="fuzz", pubs=["live:*"])

    @hsettings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(fuzz_frames, min_size=1, max_size=8))
    def run(frames: list[str]) -> None:
        asyncio.run(fuzz_once(url, frames))

    run()
    # the server is still whole afterwards
    asyncio.run(fuzz_once(url, ['{"type": "subscribe", "stream": "room:after"}']))


async def test_bad_frames_and_binary_under_both_servers(server) -> None:
    client = await Client.connect(server.ws)
    for text, code in (("not json", "bad_request"), ('{"type": "nope"}', "bad_request"), ("[]", "bad_request")):
        reply = await client.request(text)
        assert reply["type"] == "error" and reply["code"] == code, (server.kind, reply)
        await expect_pong(client)
    reply = await client.request({"type": "subscribe", "stream": "room:x", "history": 1, "since": {"epoch": "e", "seq": 0}})
    assert (reply["code"], reply["stream"]) == ("bad_request", "room:x")
    await expect_pong(client)
    await client.ws.send(b"\x01\x02")
    with pytest.raises(websockets.ConnectionClosed):
        await client.recv()
    # 1003 under both (daphne through config.daphne_server: its WebSocket library's
    # sendClose refuses codes below 3000 other than 1000).
    assert client.ws.close_code == 1003, server.kind
