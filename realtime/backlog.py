"""The Redis list backlog of each stream (docs/architecture.md "The hot path", steps 1 and 4).

Guarantees: `append` is atomic (one Lua script): a message is stored with the next seq
and the idempotency record and archive entry beside it, or nothing is. Seqs of an epoch
have no holes, so `read` fetches exactly the wanted range by list index, O(returned).
A stream whose meta record is lost (expired, or Redis restarted empty) starts a new epoch.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisError

from .deadline import redis_call
from .errors import Unavailable
from .names import stream_keys
from .redis_clients import is_cluster
from .scripts import ScriptPipeline, pipelined

_LUA = Path(__file__).with_name("lua")
_BIG = 1 << 53


@dataclass(frozen=True, slots=True)
class Appended:
    """The stored message: its position and the finished `message` frame text."""

    seq: int
    epoch: str
    duplicate: bool
    text: str
    #: Published to the stream's layer group by the append script itself.
    published: bool = False


@dataclass(frozen=True, slots=True)
class AppendItem:
    """One message to store: `tail` is its frame after the epoch (publishing.message_tail)."""

    stream: str
    tail: str
    sender_key: str
    client_id: str | None
    archive: bool
    group: str = ""


@dataclass(frozen=True, slots=True)
class Range:
    """Frames `first`, `first + 1`, ... of `epoch`, oldest first; `latest` is the counter."""

    epoch: str
    latest: int
    first: int
    frames: list[str]

    @property
    def last(self) -> int:
        return self.first + len(self.frames) - 1


@dataclass(frozen=True, slots=True)
class Head:
    """A stream at a glance: its epoch ("" before its first message), latest seq, newest frame."""

    epoch: str
    latest: int
    newest: str | None


@dataclass(frozen=True, slots=True)
class Tail:
    """A stream's epoch (None: lost), its counter, and the frame stored under one seq."""

    epoch: str | None
    latest: int
    frame: str | None


def new_epoch() -> str:
    return secrets.token_urlsafe(6)


def frame_head(stream: str) -> str:
    return '{"type":"message","stream":"%s","seq":' % stream


def frame_text(head: str, seq: int, epoch: str, tail: str) -> str:
    """The `message` frame, built exactly as append.lua builds the stored copy."""
    return f'{head}{seq},"epoch":"{epoch}",{tail}'


class Backlog:
    """Per event loop: the scripts, bound to one async Redis client that decodes replies
    to str (realtime.redis_clients: `decode_responses=True`)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        prefix: str,
        buckets: int,
        size: int,
        ttl: int,
        idempotency_ttl: int,
        wait_replicas: int = 0,
        wait_ms: int = 500,
        group_channel: Callable[[str], str] | None = None,
        sharded: bool = False,
    ) -> None:
        self.redis = redis
        #: With the name of a group's pub/sub channel (realtime/layer_channel.py), an append
        #: also publishes the message there, in the same script: one round trip per publish.
        #: Not while waiting for replicas: nobody may see a message a failover can take back.
        self.group_channel = None if wait_replicas else group_channel
        #: SPUBLISH (Redis Cluster's sharded pub/sub) instead of PUBLISH.
        self.sharded = "1" if sharded else "0"
        #: With replicas to wait for, an append counts as stored only once that many
        #: replicas have it (WAIT on the same connection): a failover cannot take it back.
        self.wait_replicas = wait_replicas
        self.wait_ms = wait_ms
        self.prefix = prefix
        self.buckets = buckets
        self.size = size
        self.ttl = ttl
        self.idempotency_ttl = idempotency_ttl
        self._append = redis.register_script((_LUA / "append.lua").read_text())
        self._read = redis.register_script((_LUA / "read.lua").read_text())
        self._tail = redis.register_script((_LUA / "tail.lua").read_text())
        self._new_epoch = redis.register_script((_LUA / "new_epoch.lua").read_text())
        self._durable = redis.register_script((_LUA / "durable.lua").read_text())
        #: "1" when reads stop at what replicas are known to hold (read.lua ARGV[6]).
        self._durable_only = "1" if wait_replicas else "0"

    def _append_call(self, item: AppendItem) -> tuple[list[str], list[Any], str, bool]:
        """The append script's keys and arguments for `item`, its frame head, and whether
        the script publishes it too."""
        keys = stream_keys(self.prefix, item.stream, self.buckets)
        idem = f"{keys.idem}{len(item.sender_key)}:{item.sender_key}:{item.client_id}" if item.client_id is not None else ""
        head = frame_head(item.stream)
        args: list[Any] = [new_epoch(), head, item.tail, self.size, self.ttl, self.idempotency_ttl, item.stream, self.sharded]
        channel = self.group_channel(item.group) if self.group_channel is not None and item.group else ""
        # An unused key is the meta key again (append.lua): one slot in a cluster.
        script_keys = [keys.meta, keys.log, idem or keys.meta, keys.archive if item.archive else keys.meta,
                       channel or keys.meta]
        return script_keys, args, head, bool(channel)

    @staticmethod
    def _appended(item: AppendItem, head: str, published: bool, reply: list[Any]) -> Appended:
        seq, epoch, dup = reply
        return Appended(int(seq), epoch, bool(dup), frame_text(head, int(seq), epoch, item.tail), published and not dup)

    async def append(
        self, stream: str, tail: str, *, sender_key: str, client_id: str | None, archive: bool, group: str = ""
    ) -> Appended:
        """Store one message; a repeated (sender, id) within the TTL returns the first seq.
        With the stream's layer `group` and a channel prefix, a new message is also published."""
        item = AppendItem(stream, tail, sender_key, client_id, archive, group)
        script_keys, args, head, published = self._append_call(item)
        async with redis_call():
            if not self.wait_replicas:
                reply = await self._append(keys=script_keys, args=args)
            else:
                keys = stream_keys(self.prefix, stream, self.buckets)
                async with self.redis.pipeline(transaction=False) as pipe:  # one connection
                    await self._append(keys=script_keys, args=args, client=pipe)
                    # A write of this connection's own after the message, even when it was a
                    # repeat stored by another connection: replication keeps order, so WAIT
                    # then counts replicas that hold the message itself.
                    pipe.expire(keys.meta, self.ttl)
                    pipe.execute_command("WAIT", self.wait_replicas, self.wait_ms)
                    reply, _, copies = await pipe.execute()
                if int(copies) < self.wait_replicas:
                    raise Unavailable(
                        f"stored, but on {copies} of {self.wait_replicas} replicas within {self.wait_ms} ms: "
                        "retry with the same id"
                    )
                await self._durable(keys=[keys.meta], args=[reply[1], int(reply[0])])
        return self._appended(item, head, published, reply)

    async def append_many(self, items: list[AppendItem]) -> list[Appended | Unavailable]:
        """Store `items` in order, each as `append` would, in one pipelined round trip (one
        per shard in a cluster): a bulk publisher pays Redis's latency once, not per message.
        With replicas to wait for, one by one (each append waits for its own copies).

        Each item has its outcome in its place: an append Redis refused is `Unavailable`
        there, and the others are what was stored. When the pipeline as a whole fails (a
        connection lost, the time limit), this raises `Unavailable`, and some appends may
        have been stored, as a single cut-off `append` may: retry with ids (the idempotency
        record makes the retry the same message; without an id it may be stored twice).
        """
        if self.wait_replicas:
            return [await self.append(i.stream, i.tail, sender_key=i.sender_key, client_id=i.client_id,
                                      archive=i.archive, group=i.group) for i in items]
        calls = [self._append_call(item) for item in items]
        async with redis_call():
            # Not scripts.pipelined: after NOSCRIPT it runs the whole pipeline again, and an
            # append without an id must not run twice. Here only the refused ones run again.
            cluster = is_cluster(self.redis)
            async with self.redis.pipeline(transaction=False) as pipe:
                loads = await self._load_first_on_each_node(pipe, calls) if cluster else 0
                queued = ScriptPipeline(pipe, cluster)
                for script_keys, args, _, _ in calls:
                    await queued.run(self._append, script_keys, args)
                replies = (await pipe.execute(raise_on_error=False))[loads:]
            for n, reply in enumerate(replies):
                if isinstance(reply, NoScriptError):  # a node that does not know the script yet
                    try:
                        replies[n] = await self._append(keys=calls[n][0], args=calls[n][1])
                    except RedisError as exc:
                        replies[n] = exc
        return [Unavailable(f"Redis refused the append: {reply.__class__.__name__}: {reply}")
                if isinstance(reply, Exception) else self._appended(item, head, published, reply)
                for item, (_, _, head, published), reply in zip(items, calls, replies, strict=True)]

    async def _load_first_on_each_node(self, pipe: Any, calls: list[tuple[list[str], list[Any], str, bool]]) -> int:
        """Queue SCRIPT LOAD of the append script first on each primary the appends go to:
        a node's commands run in order on one connection, so none of them meets NOSCRIPT
        (a promoted replica that never loaded it) and is run again after the later ones,
        out of its stream's order. Returns how many replies these add at the head."""
        client = cast(RedisCluster, self.redis)
        if not client.nodes_manager.slots_cache:
            await client.initialize()
        nodes = {}
        for script_keys, _, _, _ in calls:
            node = client.get_node_from_key(script_keys[0])
            if node is not None:  # a slot nobody serves: its append answers for itself
                nodes[node.name] = node
        for node in nodes.values():
            pipe.execute_command("SCRIPT LOAD", self._append.script, target_nodes=node)
        return len(nodes)

    async def read(
        self, stream: str, first: int = 1, last: int = -1, most: int = 0, budget: int = 0, keep_oldest: bool = False
    ) -> Range:
        """Frames with seq in [first, last] (last -1: the latest), at most `most` counted back
        from `last`; a trimmed start begins at the oldest frame kept (`Range.first` says).
        With a `budget`, at most that many bytes of frames (and at least one), cut in Redis so
        that a large read never crosses the network: the newest are kept, or the oldest."""
        keys = stream_keys(self.prefix, stream, self.buckets)
        args: list[str | int] = [new_epoch(), self.ttl, first, last, most, self._durable_only, budget, "1" if keep_oldest else "0"]
        async with redis_call():
            result = await self._read(keys=[keys.meta, keys.log], args=args)
        return Range(result[0], int(result[1]), int(result[2]), result[3:])

    async def heads(self, streams: list[str]) -> list[Head]:
        """Each stream's epoch, latest seq and newest kept frame, in one round trip and
        without creating anything (a list page asks this for many streams)."""
        async with redis_call(), self.redis.pipeline(transaction=False) as pipe:
            for stream in streams:
                keys = stream_keys(self.prefix, stream, self.buckets)
                pipe.hmget(keys.meta, ["epoch", "seq"])
                pipe.lindex(keys.log, 0)
            answers = await pipe.execute()
        heads = []
        for i in range(len(streams)):
            (epoch, seq), newest = answers[2 * i], answers[2 * i + 1]
            heads.append(Head(epoch or "", int(seq or 0), newest))
        return heads

    async def position(self, stream: str) -> tuple[str, int]:
        """(epoch, latest seq), creating the epoch when the stream has none."""
        r = await self.read(stream, first=_BIG)
        return r.epoch, r.latest

    async def tails(self, wanted: list[tuple[str, int]]) -> list[Tail]:
        """For each (stream, seq): its epoch (None when lost), its counter and the frame
        stored under seq, in one pipelined round trip; creates nothing."""

        async def build(pipe: ScriptPipeline) -> None:
            for stream, seq in wanted:
                keys = stream_keys(self.prefix, stream, self.buckets)
                await pipe.run(self._tail, [keys.meta, keys.log], [seq, self._durable_only])

        async with redis_call():
            rows = await pipelined(self.redis, build)
        return [Tail(e or None, int(n), f or None) for e, n, f in rows]

    async def replace_epoch(self, stream: str, seen: str) -> str:
        """Move `stream` to a new epoch if it is still at `seen`; returns its epoch after."""
        keys = stream_keys(self.prefix, stream, self.buckets)
        async with redis_call():
            epoch: str = await self._new_epoch(keys=[keys.meta, keys.log], args=[seen, new_epoch(), self.ttl])
        return epoch

    async def positions(self, streams: list[str]) -> list[tuple[str | None, int]]:
        """(epoch or None, latest seq) of many streams in one pipelined round trip; creates nothing."""
        async with redis_call(), self.redis.pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.hmget(stream_keys(self.prefix, stream, self.buckets).meta, "epoch", "seq")
            rows = await pipe.execute()
        return [(e, int(s or 0)) for e, s in rows]
