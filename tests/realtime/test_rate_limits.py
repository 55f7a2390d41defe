"""Rates that fit their users (docs/protocol.md 1.1 "Limits"), in process against the real
test Redis: per sender over all of its sockets and requests, a higher rate for backend
publishers, never an abuse close for a client that waits `retry_after`, and limits on
subscribe churn and typing."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.test import AsyncClient

from realtime import runtime
from realtime.consumers import StreamConsumer
from tests.tokens import mint

app = StreamConsumer.as_asgi()
pytestmark = pytest.mark.django_db(transaction=True)


async def connect(**claims: Any) -> WebsocketCommunicator:
    ws = WebsocketCommunicator(app, f"/ws/?token={mint(**claims)}")
    connected, _ = await ws.connect()
    assert connected
    return ws


async def send(ws: WebsocketCommunicator, frame: dict[str, Any]) -> None:
    await ws.send_to(text_data=json.dumps(frame))


async def reply(ws: WebsocketCommunicator, timeout: float = 5) -> dict[str, Any]:
    """The next frame that is not a presence event; a close comes back as a frame too."""
    while True:
        event = await ws.receive_output(timeout)
        if event["type"] == "websocket.close":
            return {"type": "close", "code": event.get("code")}
        frame: dict[str, Any] = json.loads(event["text"])
        if frame["type"] not in ("presence", "typing"):
            return frame


async def publish(ws: WebsocketCommunicator, stream: str, n: int) -> dict[str, Any]:
    await send(ws, {"type": "publish", "stream": stream, "data": {"text": str(n)}, "id": f"p{n}"})
    return await reply(ws)


def poster(token: str) -> Any:
    """POST a JSON body with this bearer token (per request: AsyncClient drops
    constructor headers)."""
    client = AsyncClient()

    async def post(path: str, body: Any) -> int:
        got = await client.post(path, body, content_type="application/json", headers={"Authorization": f"Bearer {token}"})
        return int(got.status_code)

    return post


async def test_one_user_with_four_sockets_shares_one_publish_rate(settings: Any) -> None:
    settings.RT_PUBLISH_RATE, settings.RT_PUBLISH_BURST = 20.0, 40
    sockets = [await connect(sub="7", name="seven") for _ in range(4)]
    started = time.monotonic()
    acked = 0
    for n in range(160):
        answer = await publish(sockets[n % 4], "room:shared", n)
        acked += answer["type"] == "ack"
    elapsed = time.monotonic() - started
    assert acked <= 40 + 20 * elapsed + 1, (acked, elapsed)
    assert acked >= 40
    for ws in sockets:
        await ws.disconnect()
    await runtime.close_current()


async def test_a_client_that_waits_retry_after_is_never_closed(settings: Any) -> None:
    settings.RT_PUBLISH_RATE, settings.RT_PUBLISH_BURST = 10.0, 5
    settings.RT_BAD_FRAME_LIMIT = 3  # a close would come soon if waiting counted as abuse
    ws = await connect(sub="8")
    acked = limited = 0
    stop = time.monotonic() + 2.5
    n = 0
    while time.monotonic() < stop:
        n += 1
        answer = await publish(ws, "room:patient", n)
        assert answer["type"] != "close", answer
        if answer["type"] == "ack":
            acked += 1
        else:
            assert answer["code"] == "rate_limited" and answer["retry_after"] > 0, answer
            limited += 1
            await asyncio.sleep(answer["retry_after"])
    assert limited > 3 and acked >= 5 + 10 * 2
    await send(ws, {"type": "ping"})
    assert (await reply(ws))["type"] == "pong"
    await ws.disconnect()
    await runtime.close_current()


async def test_a_flood_that_does_not_back_off_is_closed_for_abuse(settings: Any) -> None:
    settings.RT_PUBLISH_RATE, settings.RT_PUBLISH_BURST = 1.0, 2
    settings.RT_BAD_FRAME_LIMIT = 5
    ws = await connect(sub="9")
    codes = []
    for n in range(40):
        answer = await publish(ws, "room:flood", n)
        codes.append(answer.get("code"))
        if answer["type"] == "close":
            break
    assert codes[-1] == 4508, codes
    await ws.disconnect()
    await runtime.close_current()


async def test_a_backend_publisher_gets_the_backend_rate_over_http(settings: Any) -> None:
    settings.RT_PUBLISH_RATE, settings.RT_PUBLISH_BURST = 20.0, 40
    post = poster(mint(pubs=["user:*"], jti="notifier"))
    statuses = [await post(f"/api/streams/user:{n}/messages", {"data": {"n": n}}) for n in range(300)]
    assert statuses == [201] * 300
    # The same principal on a stream its grant does not cover is an ordinary sender.
    post = poster(mint(sub="5", pubs=["user:*"]))
    started = time.monotonic()
    room = [await post("/api/streams/room:r/messages", {"data": {}}) for _ in range(60)]
    allowed = 40 + 20 * (time.monotonic() - started) + 1
    assert room.count(201) <= allowed and room.count(429) == 60 - room.count(201) > 0, room
    await runtime.close_current()


async def test_backend_rate_and_burst_come_from_their_settings(settings: Any) -> None:
    settings.RT_BACKEND_PUBLISH_RATE, settings.RT_BACKEND_PUBLISH_BURST = 1.0, 3
    post = poster(mint(pubs=["live:*"], jti="score-feed"))
    statuses = [await post("/api/streams/live:m/messages", {"data": {}}) for _ in range(5)]
    assert statuses[:3] == [201] * 3 and statuses[3] == 429, statuses
    await runtime.close_current()


async def test_subscribe_churn_is_limited_per_connection(settings: Any) -> None:
    settings.RT_SUBSCRIBE_RATE, settings.RT_SUBSCRIBE_BURST = 5.0, 10
    observer = await connect(sub="watcher")
    await send(observer, {"type": "subscribe", "stream": "room:churn"})
    assert (await reply(observer))["type"] == "subscribed"
    churner = await connect(sub="churner")
    started = time.monotonic()
    joined = refused = 0
    for _ in range(100):
        await send(churner, {"type": "subscribe", "stream": "room:churn"})
        answer = await reply(churner)
        if answer["type"] == "subscribed":
            joined += 1
            await send(churner, {"type": "unsubscribe", "stream": "room:churn"})
            assert (await reply(churner))["type"] == "unsubscribed"
        elif answer["type"] == "close":
            assert answer["code"] == 4508, answer  # it never waited the retry_after it was told
            break
        else:
            assert answer["code"] == "rate_limited", answer
            refused += 1
    elapsed = time.monotonic() - started
    assert joined <= 10 + 5 * elapsed + 1 and refused > 0, (joined, refused, elapsed)
    await asyncio.sleep(0.3)
    events = 0
    while not await observer.receive_nothing(0.05):
        frame = json.loads((await observer.receive_output())["text"])
        events += frame["type"] == "presence"
    assert events <= 2 * joined + 1  # each join and leave of the churner, and its own join
    await churner.disconnect()
    await observer.disconnect()
    await runtime.close_current()


async def test_a_join_leave_loop_is_refused_at_the_default_limits(settings: Any) -> None:
    """With the shipped limits: 100 join-leave cycles as fast as a socket can go (the abuse
    this limit is for) are refused long before the hundredth, and leaving never is."""
    churner = await connect(sub="churner")
    joined = refused = 0
    started = time.monotonic()
    for _ in range(100):
        await send(churner, {"type": "subscribe", "stream": "room:loop"})
        answer = await reply(churner)
        if answer["type"] != "subscribed":
            assert answer["code"] == "rate_limited" and answer["retry_after"] > 0, answer
            refused += 1
            continue
        joined += 1
        await send(churner, {"type": "unsubscribe", "stream": "room:loop"})
        assert (await reply(churner))["type"] == "unsubscribed"
    elapsed = time.monotonic() - started
    burst, rate = settings.RT_SUBSCRIBE_BURST, settings.RT_SUBSCRIBE_RATE
    assert (burst, rate) == (120, 10.0)  # as shipped
    assert refused > 0 and joined <= burst / 2 + rate * elapsed + 1, (joined, refused, elapsed)
    await churner.disconnect()
    await runtime.close_current()


async def test_typing_is_limited_per_user_over_all_of_their_sockets(settings: Any) -> None:
    settings.RT_TYPING_RATE, settings.RT_TYPING_BURST = 0.001, 4  # no refill during the test
    observer = await connect(sub="reader")
    await send(observer, {"type": "subscribe", "stream": "room:typing"})
    assert (await reply(observer))["type"] == "subscribed"
    tabs = [await connect(sub="typist", name="typist") for _ in range(3)]
    for ws in tabs:
        await send(ws, {"type": "subscribe", "stream": "room:typing"})
        assert (await reply(ws))["type"] == "subscribed"
    for _ in range(4):
        for ws in tabs:
            await send(ws, {"type": "typing", "stream": "room:typing"})
    await asyncio.sleep(0.5)
    typing = 0
    while not await observer.receive_nothing(0.1):
        frame = json.loads((await observer.receive_output())["text"])
        typing += frame["type"] == "typing"
    assert typing == 4
    for ws in [*tabs, observer]:
        await ws.disconnect()
    await runtime.close_current()
