"""Hand frames to one socket in order, without a task per frame (docs/architecture.md "Known traps").

Under uvicorn, `send` completes without suspending while the socket is writable, so
`push` steps the send coroutine once by hand (Python 3.11 has no eager tasks). Only when
it suspends does the connection get a writer task and a bounded queue; past the bound
the connection is handed to `on_overflow` (closed with a 4000-range code) and its queue
is dropped, so a client that stops reading can neither delay others nor grow memory.

The ASGI servers here only read a `websocket.send` event (uvicorn's sans-io protocol
takes its `text`; daphne's `handle_reply` likewise), so one event built per message can
go to every socket: the hub builds it once per frame, not once per recipient.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any

from .wire import frame_event

SendFn = Callable[[dict[str, Any]], Awaitable[None]]
#: An ASGI `websocket.send` event: {"type": "websocket.send", "text": frame}.
SendEvent = dict[str, Any]


def send_event(text: str) -> SendEvent:
    """The event that writes one text frame to one socket (realtime/wire.py)."""
    return frame_event(text)


class _Resume:
    """Awaits the rest of a coroutine that was already stepped once and yielded `first`."""

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self._coro = coro
        self._first = first

    def __await__(self) -> Generator[Any, Any, None]:
        coro, pending = self._coro, self._first
        while True:
            try:
                value = yield pending
            except BaseException as exc:  # cancellation or a failed future: pass it in
                try:
                    pending = coro.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    pending = coro.send(value)
                except StopIteration:
                    return


class Outbox:
    """The ordered frame queue of one connection; `push` never blocks."""

    __slots__ = ("_send", "_push_now", "_queue", "_queued", "_limit", "_writer", "_on_overflow", "closed")

    def __init__(self, send: SendFn, limit_bytes: int, on_overflow: Callable[[], None]) -> None:
        self._send = send
        #: The server's synchronous way in, where it has one (config/uvicorn_ws.py's
        #: `push_frame`: True when it took the event): no coroutine per frame.
        self._push_now: Callable[[SendEvent], bool] | None = getattr(getattr(send, "__self__", None), "push_frame", None)
        #: Made when the socket first blocks: an idle socket does not hold an empty deque
        #: (about 0.75 KiB).
        self._queue: deque[SendEvent] | None = None
        self._queued = 0
        self._limit = limit_bytes
        self._writer: asyncio.Task[None] | None = None
        self._on_overflow = on_overflow
        self.closed = False

    def push(self, text: str) -> None:
        self.push_event(send_event(text))

    def push_event(self, event: SendEvent) -> None:
        """Hand over a `send_event`, possibly the same object other outboxes get."""
        if self.closed:
            return
        if self._writer is not None:
            if self._queue is None:
                self._queue = deque()
            self._queue.append(event)
            self._queued += len(event["text"])
            if self._queued > self._limit:
                self.overflow()
            return
        push_now = self._push_now
        if push_now is not None:
            try:
                if push_now(event):
                    return
            except Exception:  # as on the coroutine path: this socket is done, not the fan-out
                self.closed = True
                return
        coro = self._send(event)
        try:
            first = coro.send(None)  # type: ignore[attr-defined]
        except StopIteration:
            return
        except Exception:
            self.closed = True
            return
        self._writer = asyncio.get_running_loop().create_task(self._drain(coro, first))  # type: ignore[arg-type]

    async def _drain(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        try:
            await _Resume(coro, first)
            while self._queue and not self.closed:
                event = self._queue.popleft()
                self._queued -= len(event["text"])
                await self._send(event)
        except Exception:
            self.closed = True
        finally:
            self._writer = None
            if not self._queue:
                self._queue = None

    def overflow(self) -> None:
        """Drop what is queued and let the owner close the socket."""
        self.closed = True
        self._queue = None
        self._queued = 0
        if self._writer is not None:
            self._writer.cancel()
        self._on_overflow()

    async def flush(self, timeout: float) -> None:
        """Wait (bounded) until what is queued has been handed to the socket."""
        writer = self._writer
        if writer is not None:
            try:
                await asyncio.wait_for(asyncio.shield(writer), timeout)
            except (TimeoutError, asyncio.CancelledError):
                pass
