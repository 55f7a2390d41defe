"""SIGTERM: the server closes open sockets with a code docs/protocol.md calls reconnectable
(1012, 1011, 1006 or 4000-4499), and the process exits."""

from __future__ import annotations

import asyncio
import signal

import pytest
import websockets

from tests.wsclient import Client

RECONNECTABLE = {1012, 1011, 1006, *range(4000, 4500)}


async def test_sigterm_closes_sockets_with_a_reconnectable_code(server) -> None:
    clients = [await Client.connect(server.ws) for _ in range(3)]
    for client in clients:
        await client.subscribe("live:bye")
    process = server.process
    assert process is not None
    process.send_signal(signal.SIGTERM)
    for client in clients:
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await client.recv(timeout=20)
        assert client.ws.close_code in RECONNECTABLE, (server.kind, client.ws.close_code)
    if server.kind == "uvicorn":
        assert {c.ws.close_code for c in clients} == {1012}
    else:  # daphne drops the connections without a close frame
        assert {c.ws.close_code for c in clients} == {1006}
    code = await asyncio.to_thread(process.wait, 20)
    assert code is not None

