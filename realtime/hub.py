"""StreamHub: one per process (event loop); ordering, gap fill and local fan-out once per stream.

docs/architecture.md "The hot path", step 2. The first local subscriber of a stream makes the hub
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
import io
import logging
from collections.abc import Callable
from typing import Any, Protocol

from django.conf import settings

from . import envelope, metrics
from .auth import Principal
from .backlog import Backlog, Range, Tail
from .deadline import redis_call
from .errors import RealtimeError, Unavailable
from .names import parse_stream
from .occupancy import Occupancy, occupancy_frame
from .ordering import Arrival, classify, plan_fill
from .outbox import SendEvent
from .presence import Presence
from .protocol import subscribed_frame
from .sessions import CONTROL_GROUP, SessionWatch
from .standing import STANDINGS
from .stats import StatsReporter
from .wire import shared_event

log = logging.getLogger("realtime.hub")


def _stop_if_cancelled() -> None:
    """End a hub loop whose cancel was lost below it. A cancel that lands during the
    presence renewal's pipelined round trip was seen to leave the task running with
    `cancelling() == 1`: the loop would go on for ever and `stop` would wait for it."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class Subscription:
    """One connection's subscription to one stream. `push` hands a send event to its socket."""

    __slots__ = ("stream", "push", "position", "live", "occupancy", "owner")

    def __init__(
        self, stream: str, push: Callable[[SendEvent], None], *, occupancy: bool = False, owner: RightsHolder | None = None
    ) -> None:
        self.stream = stream
        self.push = push
        self.position = 0
        self.live = False
        #: Whether it asked for `occupancy` frames (docs/protocol.md 1.1, "Occupancy").
        self.occupancy = occupancy
        #: The connection, asked again whether it may still read when rights change.
        self.owner = owner


class RightsHolder(Protocol):
    who: Principal

    async def recheck_access(self, stream: str) -> None: ...


class StreamState:
    __slots__ = ("name", "group", "epoch", "last", "tail", "members", "ready", "figures", "watchers", "delivered")

    def __init__(self, name: str) -> None:
        self.name = name
        self.group = parse_stream(name).group
        self.epoch = ""
        self.last = 0
        #: hash() of the frame passed on as `last` (None: not known): the position check
        #: compares it with what Redis holds under that seq, to see a rewritten tail.
        self.tail: int | None = None
        self.members: set[Subscription] = set()
        self.ready = asyncio.get_running_loop().create_future()
        #: The occupancy figures last sent to this stream's occupancy subscribers.
        self.figures: tuple[int, int] | None = None
        #: How many of `members` asked for occupancy frames.
        self.watchers = 0
        #: Frames handed to local sockets, ever (the stats page's busiest streams).
        self.delivered = 0

    def push_live(self, text: str, position: int | None = None, *, newer_only: bool = False) -> int:
        """Hand `text` (one event, shared) to every live local subscriber and return how
        many got it. With `position`, each moves there; `newer_only` skips those already
        at or past it (a connection that started with `since` may be ahead of the hub)."""
        event = shared_event(text)
        count = 0
        if position is None:
            for sub in self.members:
                if sub.live:
                    sub.push(event)
                    count += 1
            return count
        for sub in self.members:  # the fan-out of every message: once per socket
            if not sub.live or (newer_only and position <= sub.position):
                continue
            sub.position = position
            sub.push(event)
            count += 1
        return count

    def push_occupancy(self, figures: tuple[int, int]) -> None:
        """Send changed figures to the live subscribers that asked for them."""
        if figures == self.figures:
            return
        self.figures = figures
        event = shared_event(occupancy_frame(self.name, *figures))
        for sub in self.members:
            if sub.live and sub.occupancy:
                sub.push(event)

    def pass_on(self, seq: int, text: str) -> None:
        """Hand one in-order frame to every live local subscriber."""
        self.last = seq
        self.tail = hash(text)
        count = self.push_live(text, seq, newer_only=True)
        self.delivered += count
        metrics.DELIVERED.inc(count)

    def announce_hole(self, epoch: str, upto: int) -> None:
        """Tell live subscribers the messages up to `upto` of `epoch` are gone."""
        self.epoch = epoch
        self.last = upto
        self.tail = None
        told = self.push_live(subscribed_frame(self.name, epoch, upto, False), upto)
        metrics.RECOVERIES_REFUSED.inc(told)


class StreamHub:
    """Owned by one event loop; start() once, stop() on shutdown."""

    def __init__(
        self,
        layer: Any,
        backlog: Backlog,
        *,
        check_interval: float,
        presence_ttl: float = 30.0,
        session_recheck: float = 60.0,
        presence_interval: float = 1.0,
        presence_max_members: int = 100,
    ) -> None:
        self.layer = layer
        self.backlog = backlog
        self.check_interval = check_interval
        self.streams: dict[str, StreamState] = {}
        self.channel: str | None = None
        self._membership = asyncio.Lock()
        self._starting = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        #: Short tasks started by events (rights re-checks; kept: the loop holds tasks weakly).
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._started = False
        self._redis_ok = True
        #: Probes sent to the hub's own channel, and the newest one that came back.
        self._probe_sent = 0
        self._probe_back = 0
        lease = max(presence_ttl, 3 * check_interval)
        self.presence = Presence(
            backlog.redis, layer, prefix=backlog.prefix, buckets=backlog.buckets, ttl=lease, max_members=presence_max_members
        )
        self.occupancy = Occupancy(backlog.redis, prefix=backlog.prefix, buckets=backlog.buckets, ttl=lease)
        self.presence_interval = presence_interval
        self.stats = StatsReporter(self)
        self.sessions = SessionWatch(session_recheck)

    async def start(self) -> None:
        """Idempotent; concurrent callers (the first subscribers of a fresh process) all
        wait for the hub's channel: joining a group without it fails."""
        if self._started:
            return
        async with self._starting:
            if self._started:
                return
            self.channel = await self.layer.new_channel(prefix="hub.")
            # A layer that can lose subscriptions and make them again (Redis Cluster:
            # realtime/cluster_layer.py) says when: what was published meanwhile is caught up.
            hook = getattr(self.layer, "on_resubscribed", None)
            if hook is not None:
                hook(self._on_resubscribed)
            async with redis_call():
                await self.layer.group_add(CONTROL_GROUP, self.channel)
            loop = asyncio.get_running_loop()
            self._tasks = [
                loop.create_task(self._receive_loop()),
                loop.create_task(self._check_loop()),
                loop.create_task(self.sessions.run()),
                loop.create_task(self._every_interval()),
                loop.create_task(self.stats.run()),
                loop.create_task(self._rights_loop()),
            ]
            self._started = True

    async def stop(self, timeout: float = 5.0) -> None:
        """Cancel the hub's tasks and wait for them, at most `timeout` seconds: a task that
        does not end is named in the log with where it waits, instead of holding the
        shutdown for ever."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        done, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in done:
            if not task.cancelled():
                task.exception()  # retrieved: asyncio would otherwise report it at exit
        for task in pending:
            where = io.StringIO()
            task.print_stack(file=where)
            log.warning("a hub task did not stop within %.0f s of its cancel:\n%s", timeout, where.getvalue())

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
        state.watchers += sub.occupancy
        return state

    async def detach(self, sub: Subscription) -> None:
        """Forget `sub`; the last one out makes the hub leave the stream's group."""
        state = self.streams.get(sub.stream)
        if state is None or sub not in state.members:
            return
        state.members.discard(sub)
        state.watchers -= sub.occupancy
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
                event = envelope.read(message)
                if isinstance(event, envelope.Message):
                    await self._on_message(event.stream, event.epoch, event.seq, event.text)
                elif isinstance(event, envelope.Ephemeral):
                    self._on_ephemeral(event.stream, event.text)
                elif isinstance(event, envelope.Probe):
                    self._probe_back = max(self._probe_back, event.number)
                elif isinstance(event, envelope.RightsChanged):
                    self.on_rights_changed(event.stream, event.user_id)
                elif event is not None:
                    await self.sessions.on_control(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("hub failed on a message; the position check will repair the stream")

    # --- rights of open subscriptions (realtime/standing.py) -------------------------------

    def on_rights_changed(self, stream: str, user_id: str | None) -> None:
        """Forget what was read of that standing and ask that user's connections (all,
        for None) whether they may still read the stream; those that may not are cut off."""
        STANDINGS.forget(stream, user_id)
        state = self.streams.get(stream)
        if state is None:
            return
        for sub in list(state.members):
            owner = sub.owner
            if owner is not None and (user_id is None or owner.who.user_id == user_id):
                self._spawn(owner.recheck_access(stream))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    async def _rights_loop(self) -> None:
        """Every RT_RIGHTS_TTL seconds, read again the standing of every user with an open
        `group:` subscription here (one query per group) and cut off those who lost it:
        the push of a change is at most once, this bounds a lost one."""
        while True:
            _stop_if_cancelled()
            await asyncio.sleep(settings.RT_RIGHTS_TTL)
            for stream, state in list(self.streams.items()):
                name = parse_stream(stream)
                if name.kind != "group":
                    continue
                owners = [sub.owner for sub in state.members if sub.owner is not None]
                users = sorted({o.who.user_id for o in owners if o.who.user_id is not None})
                try:
                    if users:
                        await STANDINGS.refresh(name, users)
                    for owner in owners:
                        await owner.recheck_access(stream)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("re-checking the rights on %s failed; trying again later", stream)

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

    async def _check_subscription(self) -> None:
        """Pub/sub liveness: each check sends a probe to the hub's own channel. A probe
        that has not come back by the next check means the layer's subscription went silent
        (cut while its TCP stays up, a paused proxy): its connection is dropped, so that
        redis-py reconnects and subscribes again, and this check's catch-up fills the gap."""
        if self._probe_sent > self._probe_back:
            log.warning("the channel layer's subscription went silent; reconnecting it")
            metrics.SUBSCRIPTIONS_REPAIRED.inc()
            await self._reconnect_layer()
            self._probe_back = self._probe_sent
        self._probe_sent += 1
        try:
            async with redis_call():
                await self.layer.send(self.channel, envelope.probe(self._probe_sent))
        except Exception as exc:
            log.warning("probe of the channel layer failed: %s", exc)
            self._probe_back = self._probe_sent  # not a silent subscription: a failed send

    def _on_resubscribed(self) -> None:
        """The layer subscribed again after a slot move, a shard failover or a lost
        connection: catch every followed stream up from the backlog now, from the last seq
        passed on (the ordering drops what arrives twice)."""
        self._spawn(self._catch_up_all())

    async def _catch_up_all(self) -> None:
        metrics.SUBSCRIPTIONS_REPAIRED.inc()
        self._probe_back = self._probe_sent  # a probe sent before is lost with the old subscription
        try:
            await self.check_positions(renew=False)
        except Exception:
            log.exception("catching up after the layer subscribed again failed; the position check will")

    async def _reconnect_layer(self) -> None:
        """Drop the pub/sub connections of the layer (channels_redis keeps them in its
        shards' redis-py PubSub objects, which re-subscribe when they reconnect)."""
        reconnect = getattr(self.layer, "reconnect", None)
        if reconnect is not None:
            await reconnect()
            return
        for shard in getattr(self.layer, "_shards", ()):
            pubsub = getattr(shard, "_pubsub", None)
            connection = getattr(pubsub, "connection", None)
            if connection is not None:
                await connection.disconnect()

    @staticmethod
    def _tail_lost(last: int, digest: int | None, tail: Tail) -> bool:
        """Redis no longer has what this process had passed on (to `last`, whose frame's
        hash is `digest`) under this epoch: the counter went back, or another message sits
        under `last` (a failover to a replica that lagged, a restart that lost the end of
        its append-only file)."""
        if tail.latest < last:
            return True
        return digest is not None and tail.frame is not None and hash(tail.frame) != digest

    async def _replace_epoch(self, state: StreamState) -> None:
        """Move the stream to a new epoch, so that no seq of the old one names two
        messages, and tell subscribers `recovered: false` (by the catch-up that follows)."""
        log.warning(
            "%s: the tail after seq %d of epoch %s was lost in Redis; moving to a new epoch",
            state.name, state.last, state.epoch,
        )
        metrics.TAILS_LOST.inc()
        await self.backlog.replace_epoch(state.name, state.epoch)
        await self._catch_up(state, None)

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
            _stop_if_cancelled()
            await asyncio.sleep(self.check_interval)
            try:
                await self.check_positions()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("position check failed")

    async def check_positions(self, *, renew: bool = True) -> None:
        """Compare every followed stream with its counter in Redis; fill what was missed.
        With `renew`, also probe the layer and renew presence and occupancy leases."""
        states = [s for s in self.streams.values() if s.ready.done()]
        if not states:
            return
        names = [s.name for s in states]
        # What each stream had passed on when asked: more may pass on during the round trip.
        seen = [(s.last, s.tail) for s in states]
        try:
            rows = await self.backlog.tails([(s.name, last) for s, (last, _) in zip(states, seen, strict=True)])
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
        if renew:
            await self._check_subscription()
        for state, (last, digest), tail in zip(states, seen, rows, strict=True):
            if tail.epoch is None:
                continue  # lost or expired: the next publish starts a new epoch
            if tail.epoch == state.epoch and self._tail_lost(last, digest, tail):
                await self._replace_epoch(state)
            elif tail.epoch != state.epoch or tail.latest > state.last:
                await self._catch_up(state, None)
        if not renew:
            return
        try:
            await self.presence.renew_and_sweep(names)
            await self.occupancy.write(self.local_counts(), renew=True)
        except Exception as exc:
            log.warning("presence or occupancy renewal failed: %s", exc)

    # --- presence changes and occupancy, at most once per interval ---------------------

    def local_counts(self) -> dict[str, int]:
        """This process's connections per followed stream."""
        return {name: len(state.members) for name, state in self.streams.items()}

    async def _every_interval(self) -> None:
        while True:
            _stop_if_cancelled()
            await asyncio.sleep(self.presence_interval)
            try:
                await self.presence.flush()
                await self.occupancy.write(self.local_counts())
                await self._push_occupancy()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("presence or occupancy update failed: %s", exc)

    async def _push_occupancy(self) -> None:
        watched = [s for s in self.streams.values() if s.ready.done() and s.watchers]
        if not watched:
            return
        for state, figures in zip(watched, await self.occupancy.figures([s.name for s in watched]), strict=True):
            state.push_occupancy(figures)

    async def occupancy_now(self, stream: str) -> tuple[int, int]:
        """A stream's figures now, this process's own count written first (a new
        subscriber's first `occupancy` frame counts itself)."""
        state = self.streams.get(stream)
        if state is not None:
            await self.occupancy.write({**self.occupancy.written, stream: len(state.members)})
        (figures,) = await self.occupancy.figures([stream])
        return figures

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

