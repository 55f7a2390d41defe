"""A token-authenticated WebSocket is closed when the token's `exp` passes
(docs/protocol.md, "Tokens stop at exp"): an expired token stops reading."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import pytest
import websockets

from tests.tokens import mint
from tests.wsclient import Client

pytestmark = pytest.mark.slow

PUBLISHER = mint(sub="feed-publisher", pubs=["user:*"])


async def publish(server: Any, stream: str, title: str) -> None:
    async with httpx.AsyncClient() as http:
        reply = await http.post(
            f"{server.http}/api/streams/{stream}/messages",
            json={"data": {"title": title, "body": ""}},
            headers={"Authorization": "Bearer " + PUBLISHER},
        )
    assert reply.status_code == 201, reply.text


async def test_token_connection_gets_unauthorized_then_4501_at_exp(server: Any) -> None:
    client = await Client.connect(server.ws + "?token=" + mint(ttl=3, sub="7"))
    await client.subscribe("user:7")
    await publish(server, "user:7", "before exp")
    (before,) = await client.messages("user:7", 1)
    assert before["data"]["title"] == "before exp"

    # Nothing but the refusal comes after exp, then the terminal close code.
    frame = await client.recv_type("error", timeout=10)
    assert frame["code"] == "unauthorized" and "expired" in frame["message"], frame
    await asyncio.wait_for(client.ws.wait_closed(), 10)
    assert client.ws.close_code == 4501


async def test_connection_without_token_is_not_closed_by_the_timer(server: Any) -> None:
    token_client = await Client.connect(server.ws + "?token=" + mint(ttl=2, sub="8"))
    anonymous = await Client.connect(server.ws)
    await anonymous.subscribe("room:expiry-watch")
    await asyncio.wait_for(token_client.ws.wait_closed(), 10)
    assert token_client.ws.close_code == 4501
    # The anonymous socket, opened at the same moment, still answers and still reads.
    assert await anonymous.request({"type": "ping"}) == {"type": "pong"}
    await publish_room(server)
    (msg,) = await anonymous.messages("room:expiry-watch", 1)
    assert msg["data"] == {"text": "still here"}
    await anonymous.close()


async def publish_room(server: Any) -> None:
    async with httpx.AsyncClient() as http:
        reply = await http.post(
            f"{server.http}/api/streams/room:expiry-watch/messages",
            json={"data": {"text": "still here"}},
            headers={"Authorization": "Bearer " + mint(sub="9")},
        )
    assert reply.status_code == 201, reply.text


async def test_nothing_is_read_or_delivered_after_exp(server: Any) -> None:
    """Between the refusal and the close, the connection is already dead to the streams:
    a ping gets no pong, a message published then is not delivered."""
    client = await Client.connect(server.ws + "?token=" + mint(ttl=2, sub="9"))
    await client.subscribe("user:9")
    await client.recv_type("error", timeout=10)
    with contextlib.suppress(websockets.ConnectionClosed):  # the close may already be under way
        await client.send({"type": "ping"})
    await publish(server, "user:9", "after exp")
    rest = []
    with contextlib.suppress(websockets.ConnectionClosed):  # read everything up to the close
        while True:
            rest.append(await client.recv(10))
    assert rest == [] and client.ws.close_code == 4501
