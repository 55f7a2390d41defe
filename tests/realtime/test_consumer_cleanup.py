"""Whatever ends a connection, what it held is given back: in process, with channels'
WebsocketCommunicator driving the real consumer against the real test Redis.

Hostile frames answer `bad_request` and the connection lives on; an unexpected failure
inside the consumer closes with 1011; either way the hub's streams, the layer's pub/sub
channels, the presence sets and the gauges are back where they started."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from prometheus_client import REGISTRY

from realtime import runtime
from realtime.consumers import StreamConsumer
from realtime.names import parse_stream, stream_keys
from tests.tokens import mint

DEEP = '{"type":"ping","x":' + "[" * 1100 + "]" * 1100 + "}"
app = StreamConsumer.as_asgi()


async def connect(user: str) -> WebsocketCommunicator:
    token = mint(sub=user, name=user)
    ws = WebsocketCommunicator(app, f"/ws/?token={token}")
    connected, _ = await ws.connect()
    assert connected
    return ws


async def request(ws: WebsocketCommunicator, frame: dict[str, Any] | str) -> dict[str, Any]:
    """The reply to `frame`: presence events of other members may come first."""
    await ws.send_to(text_data=frame if isinstance(frame, str) else json.dumps(frame))
    while True:
        reply: dict[str, Any] = json.loads(await ws.receive_from(timeout=5))
        if reply["type"] != "presence":
            return reply


async def held() -> dict[str, float]:
    """What connections hold, as the gauges, the hub, Redis pub/sub and presence say."""
    redis = runtime.current().redis
    channels = await redis.pubsub_channels(f"{settings.RT_KEY_PREFIX}*")
    presence = 0
    for i in range(20):
        presence += await redis.zcard(stream_keys(settings.RT_KEY_PREFIX, f"room:leak{i}", settings.RT_BUCKETS).presence)
    hub = await runtime.current().hub()
    return {
        "connections": REGISTRY.get_sample_value("rt_connections") or 0.0,
        "subscriptions": REGISTRY.get_sample_value("rt_subscriptions") or 0.0,
        "hub_streams_gauge": REGISTRY.get_sample_value("rt_hub_streams") or 0.0,
        "hub_streams": float(len(hub.streams)),
        "group_channels": float(sum(1 for c in channels if "__group__" in c)),
        "presence": float(presence),
    }


@pytest.fixture
async def baseline() -> AsyncIterator[dict[str, float]]:
    await runtime.current().hub()  # the hub's own channel exists before and after
    yield await held()
    await runtime.close_current()


async def subscribe_all(ws: WebsocketCommunicator, count: int) -> None:
    for i in range(count):
        reply = await request(ws, {"type": "subscribe", "stream": f"room:leak{i}"})
        assert reply["type"] == "subscribed", reply


async def test_twenty_sockets_sending_deep_json_get_bad_request_and_leave_nothing_behind(
    baseline: dict[str, float],
) -> None:
    sockets = [await connect(f"u{n}") for n in range(20)]
    for ws in sockets:
        await subscribe_all(ws, 20)
    during = await held()
    assert during["hub_streams"] == baseline["hub_streams"] + 20
    assert during["presence"] == 20 * 20
    for ws in sockets:
        reply = await request(ws, DEEP)
        assert reply["type"] == "error" and reply["code"] == "bad_request", reply
        assert "nested too deep" in reply["message"]
        assert (await request(ws, {"type": "ping"}))["type"] == "pong"  # the connection lives on
    for ws in sockets:
        await ws.disconnect()
    assert await held() == baseline


async def test_an_unexpected_failure_closes_with_1011_and_gives_everything_back(
    baseline: dict[str, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: StreamConsumer, frame: object) -> None:
        raise RuntimeError("a bug in a frame handler")

    monkeypatch.setattr(StreamConsumer, "on_typing", broken)
    ws = await connect("victim")
    await subscribe_all(ws, 5)
    await ws.send_to(text_data=json.dumps({"type": "typing", "stream": "room:leak0"}))
    while True:
        event = await ws.receive_output(timeout=5)
        if event["type"] == "websocket.close":
            break
    assert event["code"] == 1011
    assert await held() == baseline


async def test_a_failed_backlog_read_on_subscribe_leaves_the_group_it_joined(baseline: dict[str, float]) -> None:
    stream = "room:leak19"
    keys = stream_keys(settings.RT_KEY_PREFIX, stream, settings.RT_BUCKETS)
    await runtime.current().redis.set(keys.meta, "not a hash")  # every read of it fails: WRONGTYPE
    ws = await connect("someone")
    reply = await request(ws, {"type": "subscribe", "stream": stream})
    assert reply["type"] == "error" and reply["code"] == "unavailable", reply
    assert parse_stream(stream).full not in (await runtime.current().hub()).streams
    assert (await request(ws, {"type": "ping"}))["type"] == "pong"
    await ws.disconnect()
    assert await held() == baseline
