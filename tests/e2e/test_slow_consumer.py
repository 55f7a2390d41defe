"""A subscriber that stops reading: the others are not held back, the server stays
bounded (the outbox cap drops its queue) and ends it with close code 4000, which the
client sees as soon as it reads again; reconnecting with `since` it loses nothing.
A peer that never reads again does not keep its connection: the close has a deadline
(`config.uvicorn_ws`, `config.daphne_server`), after which the socket is aborted."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import struct
from typing import Any

import httpx
import pytest

from tests.metrics_text import metric
from tests.tokens import mint
from tests.wsclient import Client

STREAM = "live:firehose"
COUNT = 3000
PAD = "p" * 3000  # 3000 messages of ~3 KiB: far more than socket buffers and the outbox hold


class StalledSocket:
    """A WebSocket client on a raw socket with a tiny receive buffer that, after the
    handshake and its subscribe, reads nothing until the test says so."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /ws/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head
        self.buffer = b""

    def send_text(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        assert len(payload) < 126
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)

    def read_all(self, timeout: float = 30.0) -> tuple[list[dict[str, Any]], int | None]:
        """Read up to the close frame, or to the end of the connection: the text frames and
        the close code, if any. (The server leaves a closing socket open for its close
        timeout, waiting for our reply: nothing after the close frame matters here.)"""
        self.sock.settimeout(timeout)
        data = b""
        frames: list[dict[str, Any]] = []
        code: int | None = None
        i = 0
        with contextlib.suppress(ConnectionResetError, TimeoutError):  # an abort, or nothing more
            while code is None and (chunk := self.sock.recv(1 << 16)):
                data += chunk
                i, code = self._parse(data, i, frames)
        self.sock.close()
        return frames, code

    @staticmethod
    def _parse(data: bytes, i: int, frames: list[dict[str, Any]]) -> tuple[int, int | None]:
        """Parse the whole frames of data from offset i on: the offset after them, and the
        close code once a close frame is among them."""
        while i + 2 <= len(data):
            opcode, length, at = data[i] & 0x0F, data[i + 1] & 0x7F, i + 2
            if length == 126:
                if at + 2 > len(data):
                    break
                (length,) = struct.unpack("!H", data[at : at + 2])
                at += 2
            elif length == 127:
                if at + 8 > len(data):
                    break
                (length,) = struct.unpack("!Q", data[at : at + 8])
                at += 8
            if at + length > len(data):
                break
            body = data[at : at + length]
            i = at + length
            if opcode == 1:
                frames.append(json.loads(body))
            elif opcode == 8 and length >= 2:
                return i, struct.unpack("!H", body[:2])[0]
        return i, None


async def wait_for_metric(url: str, name: str, want: float, deadline: float = 30.0) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(int(deadline / 0.1)):
            if metric((await http.get(url + "/metrics")).text, name) == want:
                return
            await asyncio.sleep(0.1)
    raise AssertionError(f"{name} did not reach {want}")


async def run_slow_consumer(srv: Any, reconnectable: set[int]) -> None:
    slow = StalledSocket(srv.port)
    slow.send_text(json.dumps({"type": "subscribe", "stream": STREAM}))
    # Two readers that keep up: one would do, a second shows they do not hold each other back.
    others = [await Client.connect(srv.ws) for _ in range(2)]
    for client in others:
        await client.subscribe(STREAM)
    await wait_for_metric(srv.http, "rt_subscriptions", 3)
    pub = await Client.connect(srv.ws + "?token=" + mint(pubs=["live:*"]))

    async def publish() -> None:
        for i in range(COUNT):
            await pub.send({"type": "publish", "stream": STREAM, "data": {"i": i, "pad": PAD}, "id": f"f{i}"})
        for _ in range(COUNT):
            assert (await pub.recv(20))["type"] == "ack"

    # The others get everything while the stalled one reads nothing at all.
    publishing = asyncio.create_task(publish())
    received = await asyncio.gather(*(client.messages(STREAM, COUNT, timeout=20) for client in others))
    await publishing
    for frames in received:
        assert [f["seq"] for f in frames] == list(range(1, COUNT + 1))

    # The server gave up on the stalled one (its outbox overflowed, its queue was dropped)
    # while it still read nothing; once it reads, it finds the close frame after what it got.
    await wait_for_metric(srv.http, "rt_slow_consumers_closed_total", 1)
    frames, code = await asyncio.to_thread(slow.read_all)
    assert code in reconnectable, code
    subscribed = frames[0]
    assert subscribed["type"] == "subscribed" and subscribed["seq"] == 0
    got = [f["seq"] for f in frames if f["type"] == "message"]
    assert got == list(range(1, len(got) + 1))  # what it got was in order, no holes
    assert len(got) < COUNT  # it really fell behind

    # Reconnecting with `since`, it loses nothing.
    again = await Client.connect(srv.ws)
    reply = await again.subscribe(STREAM, since={"epoch": subscribed["epoch"], "seq": got[-1] if got else 0})
    assert reply["recovered"] is True
    rest = await again.messages(STREAM, COUNT - len(got), timeout=20)
    assert got + [f["seq"] for f in rest] == list(range(1, COUNT + 1))
    for client in others + [pub, again]:
        await client.close()


@pytest.mark.parametrize("kind", ["uvicorn", "daphne"])
async def test_stalled_subscriber_overflows_its_outbox_and_is_closed(start_server, kind: str) -> None:
    """Keepalive pings are far away: only the outbox bound can end the stalled socket
    (under daphne, the bound of config.daphne_server on Twisted's write buffer). daphne
    writes the 9 MB flood into its buffers faster than a Python client reads them, so a
    reader that keeps up can be over 1 MiB behind there: its bound is 4 MiB (the default)."""
    srv = start_server(
        kind, RT_PUBLISH_RATE="0", RT_BACKEND_PUBLISH_RATE="0", RT_OUTBOX_BYTES=str(1 << 20 if kind == "uvicorn" else 4 << 20), RT_BACKLOG_SIZE="10000",
        RT_WS_PING_INTERVAL="600", RT_WS_PING_TIMEOUT="600", RT_WS_CLOSE_TIMEOUT="120",
    )
    await run_slow_consumer(srv, {4000})
    await wait_for_metric(srv.http, "rt_connections", 0)


@pytest.mark.parametrize(("kind", "cause"), [("uvicorn", "outbox overflow"), ("uvicorn", "ping timeout"), ("daphne", "outbox overflow")])
async def test_a_peer_that_never_reads_again_loses_its_connection(start_server, kind: str, cause: str) -> None:
    """Its socket buffers are full, so neither the 4000 close nor a ping can be written;
    the server aborts the connection after RT_WS_CLOSE_TIMEOUT while the peer still reads
    nothing. Reading afterwards, the peer finds in-order frames and then the end."""
    overflow = cause == "outbox overflow"
    srv = start_server(
        kind, RT_PUBLISH_RATE="0", RT_BACKEND_PUBLISH_RATE="0", RT_BACKLOG_SIZE="10000", RT_WS_CLOSE_TIMEOUT="1",
        RT_OUTBOX_BYTES="65536" if overflow else str(64 << 20),
        RT_WS_PING_INTERVAL="600" if overflow else "1", RT_WS_PING_TIMEOUT="600" if overflow else "1",
    )
    slow = StalledSocket(srv.port)
    slow.send_text(json.dumps({"type": "subscribe", "stream": STREAM}))
    await wait_for_metric(srv.http, "rt_subscriptions", 1)
    pub = await Client.connect(srv.ws + "?token=" + mint(pubs=["live:*"]))
    # In batches, each acknowledged before the next: a flood sent all at once would keep
    # the server busy past the 1 s ping timeout of the publisher's own connection too.
    for start in range(0, COUNT, 50):
        for i in range(start, min(start + 50, COUNT)):
            await pub.send({"type": "publish", "stream": STREAM, "data": {"i": i, "pad": PAD}, "id": f"f{i}"})
        for _ in range(start, min(start + 50, COUNT)):
            assert (await pub.recv(20))["type"] == "ack"
    if overflow:
        await wait_for_metric(srv.http, "rt_slow_consumers_closed_total", 1)
    await wait_for_metric(srv.http, "rt_connections", 1)  # only the publisher is left
    frames, _ = await asyncio.to_thread(slow.read_all, 5.0)
    got = [f["seq"] for f in frames if f["type"] == "message"]
    assert got == list(range(1, len(got) + 1)) and len(got) < COUNT
    await pub.close()
