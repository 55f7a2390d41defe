"""uvicorn's sans-io WebSocket protocol with a deadline on closing.

uvicorn closes politely: a `websocket.close` from the application first waits for the
socket to be writable, and its own ping timeout closes the transport only once the
write buffer has drained. A peer that stops reading lets neither happen, so its TCP
connection (and the consumer behind it) would stay forever, although the outbox has
already dropped its queue. ASGI gives an application no way to abort a socket; uvicorn
lets a server pick its WebSocket protocol class (`--ws module:Class`), so the deadline
lives here: once a close has been asked for, by the application or by a ping timeout,
a connection still open `RT_WS_CLOSE_TIMEOUT` seconds later (default 10) is aborted.
The peer, when it reads again, finds what it was sent and then a reset, reconnects, and
recovers with `since`.

It also writes a frame's prepared bytes (realtime/wire.py: a message's are built once and
shared by every socket) as they are, when nothing of this socket changes them: no
permessage-deflate, open, writable. And it coalesces: the frames one socket is handed in
one turn of the event loop (a replay, a burst of messages) go out in one `write` at the
end of that turn, instead of a system call each. Under load it paces: a socket written
less than `RT_WS_COALESCE_MS` ago (default 2; longer while a round of writes to every
socket takes longer, see `_Coalescer`) is held until that much has passed, so that the
messages of a burst join one write. The kernel `write` is most of what a fan-out costs
(bench/README.md), and the reader's `read` too, so a busy socket costs it once per hold
instead of once per message; a quiet one (a chat, an ack) is still written at once. The
other cases (a full write buffer, closing, compression, frames without prepared bytes)
first write what is pending, then take uvicorn's own path, which encodes the text; so
frames keep their order, and the outbox bound and the 4000 close work as before.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import weakref
from typing import Any

from django.conf import settings
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from realtime.wire import FRAME

log = logging.getLogger("realtime.server")


#: A round of writes to at least this many sockets says how long the process takes to
#: write its sockets once (`_Coalescer.hold`); fewer (an ack, a reply) say nothing of it.
BIG_ROUND = 16
#: While one such round takes longer than RT_WS_COALESCE_MS, a socket is held this many
#: rounds, at most `MAX_HOLD` seconds: the busier the process, the more each write carries.
ROUNDS_HELD = 1.5
MAX_HOLD = 0.05


class _Coalescer:
    """The sockets with frames pending, written together: one callback for all of them, not
    one per socket. A socket last written at least its hold ago is written at the end of
    this turn of the loop (`dirty`); one written more recently is held until its hold has
    passed (`held`, written by one timer), so that under load each socket is written at
    most once per hold however many messages it is handed. The hold is `interval`
    (RT_WS_COALESCE_MS), or 1.5 times the last big round of writes where that is longer,
    up to 50 ms, for as long as big rounds keep coming (one at least every two holds):
    1,000 sockets take about 8 ms to write once here, so a message every 8 ms would
    otherwise cost a write per socket each, which the process cannot keep up with, where
    two per write it can. It holds its loop weakly, so that the last one used
    (`_last`) does not keep a finished loop alive."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float | None = None) -> None:
        self.loop = weakref.ref(loop)
        self.interval = settings.RT_WS_COALESCE_MS / 1000 if interval is None else interval
        self.hold = self.interval
        #: loop.time() of the last big round: the longer hold lasts while they keep coming.
        self.big_at = float("-inf")
        self.dirty: list[DeadlineWebSocketProtocol] = []
        self.held: list[DeadlineWebSocketProtocol] = []

    def add(self, protocol: DeadlineWebSocketProtocol, written_at: float) -> None:
        """`protocol` has frames pending; it was last written at `written_at` (loop time)."""
        loop = protocol.loop
        now = loop.time()
        hold = self.hold
        if now > self.big_at + 2 * hold:  # no big round for two holds: the load has gone
            hold = self.interval
        due = written_at + hold
        if now < due:
            if not self.held:
                loop.call_at(due, self.flush_held)
            self.held.append(protocol)
        else:
            if not self.dirty:
                loop.call_soon(self.flush)
            self.dirty.append(protocol)

    def flush(self) -> None:
        dirty, self.dirty = self.dirty, []
        self._write(dirty)

    def flush_held(self) -> None:
        held, self.held = self.held, []
        self._write(held)

    def _write(self, protocols: list[DeadlineWebSocketProtocol]) -> None:
        started = time.monotonic()
        for protocol in protocols:
            try:
                protocol.write_pending()
            except Exception:  # that socket's transport failed: the others are still written
                log.exception("writing a socket's pending frames failed")
        if len(protocols) >= BIG_ROUND and self.interval:
            self.hold = max(self.interval, min(MAX_HOLD, ROUNDS_HELD * (time.monotonic() - started)))
            loop = self.loop()
            if loop is not None:
                self.big_at = loop.time()


#: One per event loop, forgotten with it (tests run many loops in one process).
_coalescers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Coalescer] = weakref.WeakKeyDictionary()
#: The one found last: a server has one loop, and a weak table's lookup makes a weak
#: reference each time (it showed in profiles, once per socket per message).
_last: _Coalescer | None = None


def _coalescer(loop: asyncio.AbstractEventLoop) -> _Coalescer:
    global _last
    last = _last
    if last is not None and last.loop() is loop:
        return last
    found = _coalescers.get(loop)
    if found is None:
        found = _coalescers[loop] = _Coalescer(loop)
    _last = found
    return found


#: Shared by every socket's receive queue (see `_trim_receive_queue`).
_NO_PUTTERS: collections.deque[Any] = collections.deque()
_NEVER_JOINED = asyncio.Event()


class DeadlineWebSocketProtocol(WebSocketsSansIOProtocol):
    _abort_timer: asyncio.TimerHandle | None = None
    _lost = False
    #: Set once accepted when nothing of this socket changes a frame's bytes (no HTTP
    #: response instead of the handshake, no extension such as permessage-deflate): what
    #: `push_frame` would otherwise ask of every socket for every message.
    _plain = False
    #: The transport's write buffer is above its high-water mark (`writable` is clear).
    _paused = False
    #: Loop time of the last write of pending frames (pacing, see `_Coalescer`).
    _written_at = float("-inf")
    #: This loop's coalescer, found once at the accept.
    _out: _Coalescer
    #: Frame bytes handed over in this turn of the loop, not yet written.
    _pending: list[bytes] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._trim_receive_queue()

    def _trim_receive_queue(self) -> None:
        """uvicorn's receive queue is unbounded and nobody joins it, so its deque of
        blocked `put`s stays empty and its `join` event is never awaited: every socket
        shares one of each instead of holding its own (a deque is about 0.75 KiB even
        empty). Left as it is where asyncio keeps them otherwise."""
        queue = self.queue
        if queue.maxsize == 0 and isinstance(getattr(queue, "_putters", None), collections.deque) \
                and isinstance(getattr(queue, "_finished", None), asyncio.Event):
            queue._putters = _NO_PUTTERS  # type: ignore[attr-defined]
            queue._finished = _NEVER_JOINED  # type: ignore[attr-defined]

    def _abort_if_still_open(self) -> None:
        """Arm the deadline once: a second close request does not push it back."""
        if self._abort_timer is None and not self._lost:
            self._abort_timer = self.loop.call_later(settings.RT_WS_CLOSE_TIMEOUT, self._abort)

    def _abort(self) -> None:
        self._abort_timer = None
        if not self._lost:
            log.info("aborting a WebSocket whose peer did not read its close within %.0f s", settings.RT_WS_CLOSE_TIMEOUT)
            self.transport.abort()

    def push_frame(self, message: Any) -> bool:
        """The part of `send` that needs no waiting: a prepared frame this socket can take
        as it is joins this turn's write, and True says so. realtime/outbox.py calls it
        directly, so that a message fanned out to many sockets makes no coroutine per socket."""
        frame = message.get(FRAME)
        # Where uvicorn would write the frame at once, and write these very bytes. The
        # peer's close (`handle_close`) clears `_plain`; every other way out of the open
        # state sets `close_sent` or closes the transport. Inline: once per socket per message.
        if frame is None or not self._plain or self._paused or self.close_sent or self.disconnected \
                or self.transport.is_closing():
            return False
        pending = self._pending
        if pending is None:
            self._pending = [frame.wire()]
            self._out.add(self, self._written_at)
        else:
            pending.append(frame.wire())
        return True

    async def send(self, message: Any) -> None:
        if self.push_frame(message):
            return
        self.write_pending()  # what came before goes first
        if message["type"] == "websocket.close" and self.handshake_complete:
            self._abort_if_still_open()
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            # uvicorn reads the handshake's request and response only until it is answered;
            # each socket would hold both, headers and all, for its whole life.
            self.request = self.response = None  # type: ignore[assignment]
            self._plain = self.initial_response is None and not self.conn.extensions
            self._out = _coalescer(self.loop)

    def write_pending(self) -> None:
        pending = self._pending
        if pending is not None:
            self._pending = None
            if not self._lost and not self.transport.is_closing():
                self.transport.write(pending[0] if len(pending) == 1 else b"".join(pending))
                self._written_at = self.loop.time()

    def pause_writing(self) -> None:
        self._paused = True
        super().pause_writing()

    def resume_writing(self) -> None:
        self._paused = False
        super().resume_writing()

    # uvicorn's own writes that close the socket: the frames still held for this socket's
    # next write go first, or the close would drop them.

    def handle_close(self, event: Any) -> None:
        self._plain = False
        self.write_pending()
        super().handle_close(event)

    def handle_parser_exception(self) -> None:
        self.write_pending()
        super().handle_parser_exception()

    def keepalive_timeout(self) -> None:
        self.write_pending()
        super().keepalive_timeout()
        self._abort_if_still_open()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._pending = None
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None
        super().connection_lost(exc)
