"""StreamHub: one per process (event loop); ordering, gap fill and local fan-out once per stream.

DESIGN.md "The hot path", step 2. The first local subscriber of a stream makes the hub
join that stream's channel-layer group with the hub's one channel; the last one leaving
makes it leave. Pub/sub delivers each message once per process and at most once, so the
hub keeps each stream's position (epoch, last seq passed on) and:

- drops a seq at or below its position (a duplicate, or one already read from the backlog);
- on a seq that jumps ahead (racing publishers, a lost pub/sub message) reads the hole
  from the backlog once and passes the messages on in order;
- every `check_interval` seconds compares its positions with the counters in Redis (one
  pipelined round trip) and fills what it missed: a lost last message, messages published
  while Redis or the layer's subscription was down;
- when the backlog no longer has the hole (trimmed, or a new epoch) it tells its
  subscribers with `subscribed ... recovered: false` and goes on after the hole: it never
  skips silently.

Ordering scope: per stream, by seq; none across streams. Each passed-on frame is the same
pre-encoded text for every local connection; per connection only an integer comparison
remains (a connection that started with `since` may already be past that seq).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from . import metrics
from .backlog import Backlog, Range
from .deadline import redis_call
from .errors import RealtimeError, Unavailable
from .names import parse_stream
from .ordering import Arrival, classify, plan_fill
from .outbox import SendEvent, send_event
from .presence import Presence
from .protocol import subscribed_frame

log = logging.getLogger("realtime.hub")


class Subscription:
    """One connection's subscription to one stream. `push` hands a send event to its socket."""

    __slots__ = ("stream", "push", "position", "live")

    def __init__(self, stream: str, push: Callable[[SendEvent], None]) -> None:
        self.stream = stream
        self.push = push
        self.position = 0
        self.live = False


class StreamState:
    __slots__ = ("name", "group", "epoch", "last", "members", "ready")

    def __init__(self, name: str) -> None:
        self.name = name
        self.group = parse_stream(name).group
        self.epoch = ""
        self.last = 0
        self.members: set[Subscription] = set()
        self.ready = asyncio.get_running_loop().create_future()

    def push_live(self, text: str, position: int | None = None, *, newer_only: bool = False) -> int:
        """Hand `text` (one event, shared) to every live local subscriber and return how
        many got it. With `position`, each moves there; `newer_only` skips those already
        at or past it (a connection that started with `since` may be ahead of the hub)."""
        event = send_event(text)
        count = 0
        for sub in self.members:
            if not sub.live or (newer_only and position is not None and position <= sub.position):
                continue
            if position is not None:
                sub.position = position
            sub.push(event)
            count += 1
        return count

    def pass_on(self, seq: int, text: str) -> None:
        """Hand one in-order frame to every live local subscriber."""
        self.last = seq
        metrics.DELIVERED.inc(self.push_live(text, seq, newer_only=True))

    def announce_hole(self, epoch: str, upto: int) -> None:
        """Tell live subscribers the messages up to `upto` of `epoch` are gone."""
        self.epoch = epoch
        self.last = upto
        told = self.push_live(subscribed_frame(self.name, epoch, upto, False), upto)
        metrics.RECOVERIES_REFUSED.inc(told)


class StreamHub:
    """Owned by one event loop; start() once, stop() on shutdown."""

    def __init__(self, layer: Any, backlog: Backlog, *, check_interval: float, presence_ttl: float = 30.0) -> None:
        self.layer = layer
        self.backlog = backlog
        self.check_interval = check_interval
        self.streams: dict[str, StreamState] = {}
        self.channel: str | None = None
        self._membership = asyncio.Lock()
        self._starting = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._redis_ok = True
        self.presence = Presence(
            backlog.redis, layer, prefix=backlog.prefix, buckets=backlog.buckets, ttl=max(presence_ttl, 3 * check_interval)
        )

    async def start(self) -> None:
        """Idempotent; concurrent callers (the first subscribers of a fresh process) all
        wait for the hub's channel: joining a group without it fails."""
        if self._started:
            return
        async with self._starting:
            if self._started:
                return
            self.channel = await self.layer.new_channel(prefix="hub.")
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._receive_loop()), loop.create_task(self._check_loop())]
            self._started = True

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except BaseException:
                pass
        self._tasks = []

    # --- membership -------------------------------------------------------------------

    async def attach(self, sub: Subscription) -> StreamState:
        """Register `sub` (not live yet) and make sure the hub follows its stream."""
        state = self.streams.get(sub.stream)
        if state is None:
            state = self.streams[sub.stream] = StreamState(sub.stream)
            joined = False
            try:
                async with self._membership, redis_call():
                    await self.layer.group_add(state.group, self.channel)
                joined = True
                state.epoch, state.last = await self.backlog.position(sub.stream)
            except Exception as exc:
                del self.streams[sub.stream]
                state.ready.set_result(False)
                if joined:
                    await self._leave_group(sub.stream, state.group)
                raise Unavailable.from_exc(exc) from exc
            state.ready.set_result(True)
            metrics.HUB_STREAMS.set(len(self.streams))
        elif not await asyncio.shield(state.ready):
            raise Unavailable("Redis cannot be reached")
        state.members.add(sub)
        return state

    async def detach(self, sub: Subscription) -> None:
        """Forget `sub`; the last one out makes the hub leave the stream's group."""
        state = self.streams.get(sub.stream)
        if state is None or sub not in state.members:
            return
        state.members.discard(sub)
        if state.members:
            return
        del self.streams[sub.stream]
        metrics.HUB_STREAMS.set(len(self.streams))
        await self._leave_group(sub.stream, state.group)

    async def _leave_group(self, stream: str, group: str) -> None:
        """Leave `stream`'s group unless a new subscriber has followed it again meanwhile."""
        try:
            async with self._membership, redis_call():
                if stream not in self.streams:
                    await self.layer.group_discard(group, self.channel)
        except Exception as exc:
            log.warning("leaving %s failed: %s", stream, exc)

    # --- live messages ------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("channel layer receive failed: %s", exc)
                await asyncio.sleep(0.5)
                continue
            try:
                if "n" not in message:
                    self._on_ephemeral(message["s"], message["t"])
                    continue
                await self._on_message(message["s"], message["e"], int(message["n"]), message["t"])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("hub failed on a message; the position check will repair the stream")

    def _on_ephemeral(self, stream: str, text: str) -> None:
        """Presence and typing: no seq, no ordering, not replayed (at most once)."""
        state = self.streams.get(stream)
        if state is not None:
            state.push_live(text)

    async def _on_message(self, stream: str, epoch: str, seq: int, text: str) -> None:
        state = self.streams.get(stream)
        if state is None or not state.ready.done():
            return  # not followed (yet): a subscriber's own backlog read covers it
        if epoch != state.epoch:
            await self._catch_up(state, None)
            return
        arrival = classify(state.last, seq)
        if arrival is Arrival.NEXT:
            state.pass_on(seq, text)
        elif arrival is Arrival.AHEAD:
            await self._catch_up(state, seq)

    async def _catch_up(self, state: StreamState, upto: int | None) -> None:
        """Read what the hub has not passed on (to `upto`, or to the latest) and pass it on."""
        try:
            got = await self.backlog.read(state.name, first=state.last + 1, last=upto if upto else -1)
        except RealtimeError as exc:
            log.warning("hole in %s not filled yet: %s", state.name, exc)
            return
        if self.streams.get(state.name) is not state:
            return
        if got.epoch != state.epoch:
            log.info("%s: epoch %s replaced by %s; subscribers told recovered=false", state.name, state.epoch, got.epoch)
            state.announce_hole(got.epoch, 0)
            got = await self.backlog.read(state.name, first=1, last=upto if upto else -1)
            if got.epoch != state.epoch:
                return
        self._apply(state, got)

    def _apply(self, state: StreamState, got: Range) -> None:
        fill = plan_fill(state.last, got)
        if fill.lost_upto > state.last:
            log.info("%s: seqs %d..%d were trimmed away; recovered=false", state.name, state.last + 1, fill.lost_upto)
            state.announce_hole(state.epoch, fill.lost_upto)
        for seq, text in fill.frames:  # contiguous from state.last + 1 (plan_fill)
            state.pass_on(seq, text)
            metrics.HOLES_FILLED.inc()

    # --- the position check -------------------------------------------------------------

    async def _check_loop(self) -> None:
        while True:
            await asyncio.sleep(self.check_interval)
            try:
                await self.check_positions()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("position check failed")

    async def check_positions(self) -> None:
        """Compare every followed stream with its counter in Redis; fill what was missed."""
        states = [s for s in self.streams.values() if s.ready.done()]
        if not states:
            return
        names = [s.name for s in states]
        try:
            rows = await self.backlog.positions(names)
        except Unavailable:
            if self._redis_ok:
                log.warning("Redis lost: the hub will catch up when it is back")
                self._redis_ok = False
                metrics.REDIS_UP.set(0)
            return
        if not self._redis_ok:
            log.warning("Redis is back: catching up on %d streams", len(states))
            self._redis_ok = True
        metrics.REDIS_UP.set(1)
        for state, (epoch, latest) in zip(states, rows, strict=True):
            if epoch is None:
                continue  # lost or expired: the next publish starts a new epoch
            if epoch != state.epoch or latest > state.last:
                await self._catch_up(state, None)
        try:
            await self.presence.renew_and_sweep(names)
        except Exception as exc:
            log.warning("presence renewal failed: %s", exc)

    # --- subscribing --------------------------------------------------------------------

    async def catch_up_subscriber(self, state: StreamState, sub: Subscription, epoch: str, position: int) -> tuple[list[str], bool]:
        """Frames after `position` up to the hub's own position, read from the backlog.

        The subscription is registered but not live, so the hub skips it; this loops until
        it has reached the hub, then the caller marks it live without awaiting in between:
        nothing is missed and nothing is sent twice. Returns the frames and whether a hole
        was met that the backlog cannot fill (trimmed, or a new epoch): the caller then
        says `recovered: false` at the hub's position and goes on from there.
        """
        frames: list[str] = []
        while state.epoch == epoch and state.last > position:
            got = await self.backlog.read(state.name, first=position + 1, last=state.last)
            if got.epoch != epoch or not got.frames or got.first != position + 1:
                break
            frames.extend(got.frames)
            position = got.last
        hole = state.epoch != epoch or state.last > position
        sub.position = state.last if hole else position
        return frames, hole

