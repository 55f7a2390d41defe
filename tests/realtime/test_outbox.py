"""The Outbox: frames in order, synchronous while the socket is writable, bounded when not."""

from __future__ import annotations

import asyncio
from typing import Any

from realtime.outbox import Outbox, send_event
from realtime.wire import FRAME


class Socket:
    """A send() that completes at once while writable and waits while not, like uvicorn's."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.writable = asyncio.Event()
        self.writable.set()

    async def send(self, message: dict[str, Any]) -> None:
        await self.writable.wait()
        self.sent.append(message["text"])


async def test_writable_socket_gets_frames_without_a_task() -> None:
    sock = Socket()
    box = Outbox(sock.send, 1000, lambda: None)
    tasks_before = len(asyncio.all_tasks())
    for i in range(5):
        box.push(str(i))
    assert sock.sent == ["0", "1", "2", "3", "4"]  # delivered synchronously, in order
    assert len(asyncio.all_tasks()) == tasks_before


async def test_blocked_socket_queues_in_order_then_drains() -> None:
    sock = Socket()
    sock.writable.clear()
    box = Outbox(sock.send, 1000, lambda: None)
    for i in range(5):
        box.push(f"m{i}")
    assert sock.sent == [] and not box.closed
    sock.writable.set()
    await box.flush(2.0)
    assert sock.sent == ["m0", "m1", "m2", "m3", "m4"]
    box.push("m5")
    assert sock.sent[-1] == "m5"


async def test_overflow_drops_the_queue_and_calls_the_owner() -> None:
    sock = Socket()
    sock.writable.clear()
    overflowed: list[bool] = []
    box = Outbox(sock.send, 10, lambda: overflowed.append(True))
    for i in range(10):
        box.push(f"frame{i}")
    assert overflowed == [True]
    assert box.closed
    box.push("after")
    sock.writable.set()
    await asyncio.sleep(0.01)
    assert sock.sent == []  # neither what was queued nor what came after reaches the socket


async def test_a_failing_send_marks_the_box_closed() -> None:
    async def broken(message: dict[str, Any]) -> None:
        raise ConnectionError("gone")

    box = Outbox(broken, 100, lambda: None)
    box.push("x")
    assert box.closed


async def test_one_event_goes_to_many_sockets_and_counts_its_text_when_queued() -> None:
    fast, slow = Socket(), Socket()
    slow.writable.clear()
    fast_box = Outbox(fast.send, 1000, lambda: None)
    overflowed: list[bool] = []
    slow_box = Outbox(slow.send, len("next"), lambda: overflowed.append(True))
    event = send_event("shared")
    fast_box.push_event(event)
    slow_box.push_event(event)
    slow_box.push_event(send_event("next"))
    assert fast.sent == ["shared"]
    # The first is in the send already under way: only "next" counts, and fits the bound.
    assert overflowed == [] and not slow_box.closed
    slow.writable.set()
    await slow_box.flush(2.0)
    assert slow.sent == ["shared", "next"]
    assert (event["type"], event["text"], event[FRAME].text) == ("websocket.send", "shared", "shared")  # nothing changed it
    assert set(event) == {"type", "text", FRAME}


class ServerSocket(Socket):
    """A server protocol with a synchronous way in, as config/uvicorn_ws.py has:
    `push_frame` takes what it can write as it is and says so."""

    def __init__(self) -> None:
        super().__init__()
        self.taken: list[str] = []
        self.takes = True
        self.broken = False

    def push_frame(self, message: dict[str, Any]) -> bool:
        if self.broken:
            raise RuntimeError("transport gone")
        if not self.takes or FRAME not in message:
            return False
        self.taken.append(message["text"])
        return True


async def test_a_server_that_takes_frames_synchronously_gets_them_without_a_coroutine() -> None:
    sock = ServerSocket()
    box = Outbox(sock.send, 1000, lambda: None)
    box.push("a")
    sock.takes = False  # closing, compressing, not writable: its own send decides
    box.push("b")
    sock.takes = True
    box.push("c")
    assert (sock.taken, sock.sent) == (["a", "c"], ["b"])


async def test_a_server_failing_to_take_a_frame_closes_that_box_only() -> None:
    broken, fine = ServerSocket(), ServerSocket()
    broken.broken = True
    boxes = [Outbox(broken.send, 1000, lambda: None), Outbox(fine.send, 1000, lambda: None)]
    event = send_event("shared")
    for box in boxes:
        box.push_event(event)  # the hub's loop over a stream's members goes on past the first
    assert [box.closed for box in boxes] == [True, False]
    assert fine.taken == ["shared"]
