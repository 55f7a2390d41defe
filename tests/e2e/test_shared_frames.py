"""One message, many sockets on one process: its frame bytes are built once (realtime/wire.py)
and every socket gets them, under uvicorn and daphne. A socket that negotiated
permessage-deflate (RT_WS_DEFLATE=1) takes the server's own path and still gets every
message; without that setting none is negotiated, whatever the client offers."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from tests.metrics_text import metric
from tests.tokens import mint
from tests.wsclient import Client

SOCKETS = 20
MESSAGES = 5


def frames_built(server: Any) -> float:
    return metric(httpx.get(server.http + "/metrics", timeout=5).text, "rt_frames_built_total")


async def publish(server: Any, stream: str, count: int) -> None:
    publisher = await Client.connect(server.ws + "?token=" + mint(sub="pub", pubs=["live:*"]), compression=None)
    for n in range(count):
        reply = await publisher.request({"type": "publish", "stream": stream, "data": {"n": n}, "id": f"m{n}"})
        assert reply["type"] == "ack", reply
    await publisher.close()


async def received(clients: list[Client], stream: str) -> list[list[dict[str, Any]]]:
    return list(await asyncio.gather(*(c.messages(stream, MESSAGES) for c in clients)))


async def test_each_message_is_framed_once_for_every_socket(server: Any) -> None:
    stream = "live:shared-" + uuid.uuid4().hex[:8]
    clients = [await Client.connect(server.ws, compression=None) for _ in range(SOCKETS)]
    for client in clients:
        await client.subscribe(stream)
    before = frames_built(server)
    await publish(server, stream, MESSAGES)
    got = await received(clients, stream)
    assert [[m["seq"] for m in frames] for frames in got] == [list(range(1, MESSAGES + 1))] * SOCKETS
    assert all(frames == got[0] for frames in got)
    assert [m["data"]["n"] for m in got[0]] == list(range(MESSAGES))
    assert frames_built(server) - before == MESSAGES  # not SOCKETS times as many
    for client in clients:
        await client.close()


async def test_a_socket_that_compresses_takes_its_own_path(start_server: Any) -> None:
    server = start_server("uvicorn", RT_WS_DEFLATE="1")
    stream = "live:deflate-" + uuid.uuid4().hex[:8]
    deflating = await Client.connect(server.ws)  # the client library offers permessage-deflate
    plain = await Client.connect(server.ws, compression=None)
    assert "permessage-deflate" in deflating.ws.response.headers.get("Sec-WebSocket-Extensions", "")
    assert "Sec-WebSocket-Extensions" not in plain.ws.response.headers
    for client in (deflating, plain):
        await client.subscribe(stream)
    before = frames_built(server)
    await publish(server, stream, MESSAGES)
    compressed, shared = await received([deflating, plain], stream)
    assert compressed == shared and [m["seq"] for m in shared] == list(range(1, MESSAGES + 1))
    assert frames_built(server) - before == MESSAGES  # built for the plain socket only
    for client in (deflating, plain):
        await client.close()


async def test_no_compression_is_negotiated_by_default(server: Any) -> None:
    client = await Client.connect(server.ws)  # offers permessage-deflate
    assert "Sec-WebSocket-Extensions" not in client.ws.response.headers
    await client.close()
