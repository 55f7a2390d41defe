"""A request body over the limit is refused with 413 before it is read: a declared
`Content-Length`, and a chunked body as it streams in, under both servers."""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow
THIRTY_MB = 30 * 1024 * 1024


def status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def read_until_closed(sock: socket.socket) -> bytes:
    """The whole answer: a server may send the head and the body in separate packets."""
    reply = b""
    while more := sock.recv(4096):
        reply += more
    return reply


def head(port: int, path: str, extra: str) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n{extra}\r\n").encode()


def test_a_declared_length_over_the_limit_is_413_before_any_body_is_sent(server: Any) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head(server.port, "/api/streams/room:a/messages", f"Content-Length: {THIRTY_MB}\r\n"))
        reply = read_until_closed(sock)  # nothing of the body was sent: the answer comes all the same
    assert status_of(reply) == 413, reply[:200]
    assert b'"too_large"' in reply


def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(server: Any) -> None:
    chunk = b"x" * 65536
    sent = 0
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head(server.port, "/api/streams/room:a/messages", "Transfer-Encoding: chunked\r\n"))
        sock.setblocking(False)
        reply = b""
        deadline = time.monotonic() + 20
        while sent < THIRTY_MB and time.monotonic() < deadline:
            try:
                reply += sock.recv(4096)
            except BlockingIOError:
                pass
            except ConnectionError:
                break
            if reply:
                break
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            except (BlockingIOError, ConnectionError):
                time.sleep(0.01)
        sock.setblocking(True)
        sock.settimeout(5)
        while b"\r\n\r\n" not in reply:
            more = sock.recv(4096)
            if not more:
                break
            reply += more
    assert status_of(reply) == 413, reply[:200]
    assert sent < 4 * 1024 * 1024, sent  # refused long before the 30 MB were sent


def test_pages_and_forms_have_their_own_limit_and_small_bodies_pass(server: Any) -> None:
    big = httpx.post(server.http + "/accounts/signup/", content=b"x" * (3 * 1024 * 1024), headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert big.status_code == 413
    small = httpx.post(server.http + "/api/streams/room:a/messages", json={"data": 1})
    assert small.status_code == 403  # read, then refused for want of a right
