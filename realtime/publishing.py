"""`publish(stream, data, sender)`: the one way in, for consumers, views, commands and jobs.

Guarantee: when it returns, the message is in the stream's backlog with its seq (an `ack`
may be sent), and fan-out to other processes has been attempted once over the channel
layer's pub/sub (at most once): by the append script itself, in the same round trip
(realtime/layer_channel.py), or, while waiting for replicas, by a `group_send` after the
wait. A lost fan-out is repaired by the hubs' hole fill and position
check, never by publishing again. A repeated (sender, id) returns the first seq and is not
fanned out again.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import msgspec
from django.conf import settings

from . import envelope, metrics, runtime
from .backlog import Appended, AppendItem
from .deadline import redis_call
from .errors import BadRequest, RealtimeError, TooLarge, Unavailable
from .limits import MAX_DEPTH, too_deep
from .names import StreamName, parse_stream
from .protocol import encode_json
from .sender import SERVER, Sender

__all__ = [
    "SERVER", "Outgoing", "Published", "Sender", "apublish", "apublish_each", "apublish_many", "message_tail", "publish", "publish_many",
    "send_ephemeral",
]

log = logging.getLogger("realtime.publish")
T = TypeVar("T")

#: Stream kinds whose messages are also queued for the database archive.
ARCHIVED_KINDS = frozenset({"room", "group", "dm", "user"})

#: Fan-outs a sync publisher may have queued before it waits for one to go out.
MAX_PENDING_FAN_OUTS = 256

#: Appends sent in one pipeline by `publish_many` (a longer list goes in several).
PIPELINE_SIZE = 500


@dataclass(frozen=True, slots=True)
class Published:
    stream: str
    epoch: str
    seq: int
    duplicate: bool


class Outgoing(NamedTuple):
    """One message for `publish_many`: a plain `(stream, data)` pair does too."""

    stream: str
    data: Any
    id: str | None = None


def message_tail(data: Any, sender: Sender, ts_ms: int) -> str:
    """Everything of a `message` frame after its epoch, encoded once; BadRequest for
    `data` that is not JSON (a Python caller's object, set or non-string dict key) or
    that nests deeper than docs/protocol.md 1.1 allows."""
    try:
        raw = data if isinstance(data, msgspec.Raw) else msgspec.Raw(encode_json(data))
    except (TypeError, msgspec.EncodeError) as exc:
        raise BadRequest(f"data is not JSON: {exc}") from None
    except RecursionError:
        raise BadRequest(f"data nested more than {MAX_DEPTH} levels deep") from None
    if too_deep(bytes(raw)):
        raise BadRequest(f"data nested more than {MAX_DEPTH} levels deep")
    body = encode_json({"ts": ts_ms, "data": raw, "sender": sender.public})
    if len(body) > settings.RT_MAX_FRAME:
        raise TooLarge(f"message over {settings.RT_MAX_FRAME} bytes")
    return body[1:].decode()


async def _store(stream: str, data: Any, sender: Sender | None, id: str | None) -> tuple[StreamName, Appended]:
    name = parse_stream(stream)
    sender = sender or SERVER
    tail = message_tail(data, sender, int(time.time() * 1000))
    stored = await runtime.current().backlog.append(
        name.full, tail, sender_key=sender.key, client_id=id, archive=name.kind in ARCHIVED_KINDS, group=name.group
    )
    return name, stored


async def _fan_out(name: StreamName, stored: Appended) -> None:
    """One `group_send` of the finished frame; a failure is only logged (it is stored)."""
    try:
        async with redis_call():
            await runtime.current().layer.group_send(
                name.group, envelope.message(name.full, stored.epoch, stored.seq, stored.text)
            )
    except Exception as exc:  # stored already: the hubs' position check delivers it
        log.warning("fan-out of %s seq %d failed (%s); position checks will deliver it", name.full, stored.seq, exc)
    metrics.PUBLISHED.labels(name.kind).inc()


async def apublish(stream: str, data: Any, sender: Sender | None = None, id: str | None = None) -> Published:
    """Store `data` on `stream` and fan it out; raise BadRequest, TooLarge or Unavailable.

    Rights are the caller's business (consumers and the API check them first).
    """
    return await _publish(stream, data, sender, id, _fan_out)


async def _publish(
    stream: str,
    data: Any,
    sender: Sender | None,
    id: str | None,
    fan_out: Callable[[StreamName, Appended], Awaitable[None]],
) -> Published:
    """Store, then hand a new (not repeated) message to `fan_out`: `apublish` awaits the
    pub/sub round trip, a sync caller only the bridge loop's queue (`publish`)."""
    started = time.perf_counter()
    name, stored = await _store(stream, data, sender, id)
    if stored.published:  # by the append script, in the same round trip
        metrics.PUBLISHED.labels(name.kind).inc()
    elif not stored.duplicate:
        await fan_out(name, stored)
    metrics.PUBLISH_LATENCY.observe(time.perf_counter() - started)
    return Published(name.full, stored.epoch, stored.seq, stored.duplicate)


Messages = Iterable[Outgoing | tuple[str, Any] | tuple[str, Any, str | None]]


async def apublish_many(messages: Messages, sender: Sender | None = None) -> list[Published]:
    """Store many messages, in order, each as `apublish` would, with one Redis round trip
    per PIPELINE_SIZE of them instead of one each: for backends that publish in bulk.

    Every message is checked first: a bad stream name or `data` raises BadRequest (or
    TooLarge) naming its place in the list, and nothing is stored. Redis refusing an
    append, or out of reach, raises Unavailable; what came before it may be stored, so
    give the messages ids and retry the list: the stored ones come back as duplicates.
    """
    return await _publish_many(messages, sender, _fan_out)


async def apublish_each(messages: Messages, sender: Sender | None = None) -> list[Published | RealtimeError]:
    """As `apublish_many`, but a message that cannot be published has its error in its
    place and the others are published (POST /api/messages). An append Redis refused is
    `Unavailable` in its place. Once Redis is out of reach, that `Unavailable` is the answer
    of every message of the pipeline under way and after it; some of that pipeline may
    have been stored, as with a cut-off single publish: retry with the same ids."""
    return await _store_many(_prepare(messages, sender or SERVER), _fan_out, raise_unavailable=False)


async def _publish_many(
    messages: Messages, sender: Sender | None, fan_out: Callable[[StreamName, Appended], Awaitable[None]]
) -> list[Published]:
    prepared = _prepare(messages, sender or SERVER)
    for n, item in enumerate(prepared):
        if isinstance(item, RealtimeError):
            raise item.__class__(f"message {n}: {item.message}")
    outcomes = await _store_many(prepared, fan_out, raise_unavailable=True)
    return [p for p in outcomes if isinstance(p, Published)]


def _prepare(messages: Messages, sender: Sender) -> list[tuple[StreamName, AppendItem] | RealtimeError]:
    """Each message checked and encoded, ready to append (or the reason it cannot be)."""
    ts_ms = int(time.time() * 1000)
    prepared: list[tuple[StreamName, AppendItem] | RealtimeError] = []
    for n, message in enumerate(messages):
        try:
            outgoing = message if isinstance(message, Outgoing) else Outgoing(*message)
        except TypeError:
            raise TypeError(f"message {n} is not (stream, data) or (stream, data, id): {message!r:.80}") from None
        try:
            name = parse_stream(outgoing.stream)
            tail = message_tail(outgoing.data, sender, ts_ms)
        except RealtimeError as exc:
            prepared.append(exc)
            continue
        prepared.append((name, AppendItem(name.full, tail, sender.key, outgoing.id, name.kind in ARCHIVED_KINDS,
                                          name.group)))
    return prepared


async def _store_many(
    prepared: list[tuple[StreamName, AppendItem] | RealtimeError],
    fan_out: Callable[[StreamName, Appended], Awaitable[None]],
    raise_unavailable: bool,
) -> list[Published | RealtimeError]:
    """Append the prepared messages, PIPELINE_SIZE per round trip, and fan out those the
    append script did not publish; errors stay in their places."""
    outcomes: list[Published | RealtimeError | None] = [p if isinstance(p, RealtimeError) else None for p in prepared]
    ready = [(n, p) for n, p in enumerate(prepared) if not isinstance(p, RealtimeError)]
    backlog = runtime.current().backlog
    for first in range(0, len(ready), PIPELINE_SIZE):
        chunk = ready[first:first + PIPELINE_SIZE]
        try:
            stored_all = await backlog.append_many([item for _, (_, item) in chunk])
        except Unavailable as exc:
            if raise_unavailable:
                raise
            for n, _ in ready[first:]:
                outcomes[n] = exc
            break
        refused: Unavailable | None = None
        for (n, (name, _)), stored in zip(chunk, stored_all, strict=True):
            if isinstance(stored, Unavailable):  # Redis refused this one append
                refused = refused or stored
                outcomes[n] = stored
                continue
            if stored.published:
                metrics.PUBLISHED.labels(name.kind).inc()
            elif not stored.duplicate:
                await fan_out(name, stored)
            outcomes[n] = Published(name.full, stored.epoch, stored.seq, stored.duplicate)
        if refused is not None and raise_unavailable:  # the chunk's stored ones are fanned out first
            raise refused
    # Not PUBLISH_LATENCY: it is the time of one publish, and a batch is many at once.
    filled = [outcome for outcome in outcomes if outcome is not None]
    assert len(filled) == len(outcomes), "every message has its outcome"
    return filled


class _LoopThread:
    """One event loop in a daemon thread for sync callers: its Redis connections and
    channel-layer connection are reused across calls, instead of a new loop per call.

    Fan-outs go through one queue and one task, so they leave in publish order (hubs
    would repair any other order, at the cost of a backlog read each) and a caller faster
    than pub/sub waits at the queue's bound instead of piling up work.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._fan_outs: asyncio.Queue[tuple[StreamName, Appended]] | None = None
        #: The task that sends the queued fan-outs (kept: the loop holds tasks weakly).
        self._sender: asyncio.Task[None] | None = None

    async def fan_out_later(self, name: StreamName, stored: Appended) -> None:
        if self._fan_outs is None:
            self._fan_outs = asyncio.Queue(MAX_PENDING_FAN_OUTS)
            self._sender = asyncio.get_running_loop().create_task(self._send_fan_outs(self._fan_outs))
        await self._fan_outs.put((name, stored))

    @staticmethod
    async def _send_fan_outs(queue: asyncio.Queue[tuple[StreamName, Appended]]) -> None:
        while True:
            name, stored = await queue.get()
            try:
                await _fan_out(name, stored)
            finally:
                queue.task_done()

    def flush(self, timeout: float = 5.0) -> None:
        """Wait (bounded) for fan-outs still queued: run at exit, so that a command that
        publishes and quits does not leave its last messages to the position check."""
        loop, queue = self._loop, self._fan_outs
        if loop is None or queue is None:
            return

        async def settle() -> None:
            await asyncio.wait_for(queue.join(), timeout)

        try:
            asyncio.run_coroutine_threadsafe(settle(), loop).result(timeout + 1)
        except Exception as exc:
            log.warning("fan-outs still pending at exit: %s", exc)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            coro.close()
            raise RuntimeError("publish() called from async code: use `await apublish(...)`")
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="realtime-publish", daemon=True).start()
                self._loop = loop
                atexit.register(self.flush)
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result()


_bridge = _LoopThread()


def publish(stream: str, data: Any, sender: Sender | None = None, id: str | None = None) -> Published:
    """Sync twin of `apublish`, for views, management commands and background jobs.

    Returns once the message is stored; its fan-out follows on the bridge loop, in
    publish order, and is awaited at interpreter exit.
    """
    return _bridge.run(_publish(stream, data, sender, id, _bridge.fan_out_later))


def publish_many(
    messages: Iterable[Outgoing | tuple[str, Any] | tuple[str, Any, str | None]], sender: Sender | None = None
) -> list[Published]:
    """Sync twin of `apublish_many`: many messages, pipelined, for jobs and commands."""
    return _bridge.run(_publish_many(list(messages), sender, _bridge.fan_out_later))


async def send_ephemeral(stream: str, frame: dict[str, Any]) -> None:
    """Hand `frame` (a dict with its "type") to every current subscriber of `stream` on
    every process: no seq, not stored, at most once (docs/protocol.md "Presence")."""
    name = parse_stream(stream)
    async with redis_call():
        await runtime.current().layer.group_send(name.group, envelope.ephemeral(name.full, encode_json(frame).decode()))


_control_tasks: set[asyncio.Task[None]] = set()


async def _send_control(group: str, message: dict[str, Any]) -> None:
    async with redis_call():
        await runtime.current().layer.group_send(group, message)


def send_control(group: str, message: dict[str, Any]) -> None:
    """Hand a control message to every process's hub (sessions.CONTROL_GROUP), from sync
    code (signal receivers) or from a running loop; at most once, like all pub/sub."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        _bridge.run(_send_control(group, message))
        return
    task = loop.create_task(_send_control(group, message))
    _control_tasks.add(task)
    task.add_done_callback(_control_tasks.discard)
