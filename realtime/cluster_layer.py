"""A Channels channel layer on Redis Cluster's sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`).

channels_redis has no Redis Cluster support, and classic `PUBLISH` in a cluster is copied
to every node. Sharded pub/sub routes a channel to the shard that owns its slot, so the
work splits over the shards. This layer has the interface of channels_redis's
`RedisPubSubChannelLayer` (`new_channel`, `send`, `receive`, `group_add`, `group_discard`,
`group_send`, `flush`), at most once like it, and any Channels app can use it:

    CHANNEL_LAYERS = {"default": {
        "BACKEND": "realtime.cluster_layer.ShardedChannelLayer",
        "CONFIG": {"nodes": ["10.0.0.1:7000", "10.0.0.2:7000"], "prefix": "asgi"},
    }}

Subscriptions are this module's own, one plain connection per primary, rather than
redis-py's ClusterPubSub, whose re-subscription after a slot move runs in a background
task nobody can wait for. Here an unrequested `sunsubscribe` (the slot moved, the shard
failed over), a `MOVED` reply or a lost connection is one event: the layer refreshes the
topology, subscribes again on the current owners, one `SSUBSCRIBE` per slot, and then calls
the `on_resubscribed` hooks, so that a user with a backlog (realtime.hub) can catch up on
what was published while nobody listened. Subscribing waits for Redis to confirm it.

Messages are msgpack maps, as channels_redis writes them on its pub/sub layer.
A group's channel is `prefix + "__group__" + group`; with a `group_tag` callable
(CONFIG, a dotted path) it is `prefix + "__group__{" + tag + "}" + group`, which puts the
group in the slot of that hash tag (realtime.names keeps a stream's keys and its group's
channel in one slot, so that the append script can publish).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import msgpack
from channels.layers import BaseChannelLayer
from django.utils.module_loading import import_string
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.crc import key_slot
from redis.exceptions import ConnectionError, RedisError

log = logging.getLogger("realtime.cluster_layer")


async def _disconnect_idle_connections(self: ClusterNode) -> None:
    """ClusterNode.disconnect_free_connections, without its race: redis-py 8.1 closes a
    snapshot of the idle connections in tasks that start later, so a connection another
    task takes meanwhile is closed under its command (`'NoneType' object has no attribute
    'writelines'`, seen here on every shard failover under load). Taken out of the free
    queue while they close, they cannot be handed out; redis-py 8.2 does the same."""
    idle = tuple(self._free)
    self._free.clear()
    try:
        await asyncio.gather(*(connection.disconnect() for connection in idle), return_exceptions=True)
    finally:
        self._free.extend(idle)


_node_execute = ClusterNode.execute_command
_node_execute_pipeline = ClusterNode.execute_pipeline


def _closed_under_command(exc: Exception) -> bool:
    """Whether `exc` is a connection another task closed under this command: redis-py 8.1
    drops the writer (AttributeError on None), uvloop refuses a closed transport."""
    text = str(exc)
    if isinstance(exc, AttributeError):
        return "'NoneType' object has no attribute" in text
    return isinstance(exc, RuntimeError) and "unable to perform operation on" in text


async def _execute_or_connection_error(self: ClusterNode, *args: Any, **kwargs: Any) -> Any:
    """ClusterNode.execute_command, where a connection closed under the command by another
    task (redis-py 8.1 has more than one path to it during a topology refresh) is the
    ConnectionError it is: the cluster client then refreshes the topology and retries, as
    it does for any connection lost mid-command (a publish with an id is deduplicated by
    its idempotency record, so a retry cannot store it twice)."""
    try:
        return await _node_execute(self, *args, **kwargs)
    except (AttributeError, RuntimeError) as exc:
        if not _closed_under_command(exc):
            raise
        raise ConnectionError(f"the connection to {self.name} was closed under the command") from exc


async def _pipeline_or_connection_error(self: ClusterNode, commands: Any) -> bool:
    """ClusterNode.execute_pipeline, with the same mapping. The cluster pipeline then
    retries the commands that have no reply yet, as it does after any lost connection;
    reads and renewals may run twice, and appends (Backlog.append_many) are the same
    message again when they carry an id."""
    try:
        return await _node_execute_pipeline(self, commands)
    except (AttributeError, RuntimeError) as exc:
        if not _closed_under_command(exc):
            raise
        raise ConnectionError(f"the connection to {self.name} was closed under the pipeline") from exc


def fix_cluster_node_disconnect() -> None:
    """Install the fixes above on redis-py's async ClusterNode (idempotent)."""
    ClusterNode.disconnect_free_connections = _disconnect_idle_connections  # type: ignore[method-assign]
    ClusterNode.execute_command = _execute_or_connection_error  # type: ignore[method-assign]
    ClusterNode.execute_pipeline = _pipeline_or_connection_error  # type: ignore[method-assign]


def group_channel_name(prefix: str, group: str, tag: str | None = None) -> str:
    """The sharded pub/sub channel of a group (append.lua publishes on it too)."""
    return f"{prefix}__group__{{{tag}}}{group}" if tag is not None else f"{prefix}__group__{group}"


def parse_nodes(nodes: Iterable[str | tuple[str, int]]) -> list[tuple[str, int]]:
    """`host:port` strings (or pairs) as (host, port) pairs; ValueError on a bad one."""
    pairs = []
    for node in nodes:
        if isinstance(node, str):
            host, sep, port = node.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"a Redis Cluster node is host:port, not {node!r}")
            pairs.append((host.strip("[]"), int(port)))
        else:
            pairs.append((str(node[0]), int(node[1])))
    if not pairs:
        raise ValueError("Redis Cluster needs at least one node (host:port)")
    return pairs


class ShardedChannelLayer(BaseChannelLayer):
    """The layer Channels instantiates once; the work is done by one `LoopLayer` per
    event loop (Redis connections belong to the loop that opened them)."""

    extensions = ["groups", "flush"]

    def __init__(
        self,
        nodes: Iterable[str | tuple[str, int]] = ("127.0.0.1:7000",),
        prefix: str = "asgi",
        password: str | None = None,
        group_tag: str | Callable[[str], str | None] | None = None,
        timeout: float = 5.0,
        expiry: int = 60,
        capacity: int = 100,
        channel_capacity: Any = None,
    ) -> None:
        super().__init__(expiry=expiry, capacity=capacity, channel_capacity=channel_capacity)
        self.nodes = parse_nodes(nodes)
        self.prefix = prefix
        self.password = password
        self.group_tag: Callable[[str], str | None] | None = (
            import_string(group_tag) if isinstance(group_tag, str) else group_tag
        )
        self.timeout = timeout
        self._layers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopLayer] = weakref.WeakKeyDictionary()

    def loop_layer(self) -> LoopLayer:
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = self._layers[loop] = LoopLayer(self)
        return layer

    def group_channel(self, group: str) -> str:
        return group_channel_name(self.prefix, group, self.group_tag(group) if self.group_tag else None)

    @staticmethod
    def serialize(message: dict[str, Any]) -> bytes:
        return msgpack.packb(message, use_bin_type=True)  # type: ignore[no-any-return]

    @staticmethod
    def deserialize(data: bytes) -> dict[str, Any]:
        return msgpack.unpackb(data, raw=False)  # type: ignore[no-any-return]

    # --- the channel layer API, run by this loop's layer ---------------------------------

    async def new_channel(self, prefix: str = "specific.") -> str:
        return await self.loop_layer().new_channel(prefix)

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        self.require_valid_channel_name(channel)
        await self.loop_layer().publish(channel, self.serialize(message))

    async def receive(self, channel: str) -> dict[str, Any]:
        self.require_valid_channel_name(channel)
        return self.deserialize(await self.loop_layer().receive(channel))

    async def group_add(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        await self.loop_layer().group_add(self.group_channel(group), channel)

    async def group_discard(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        await self.loop_layer().group_discard(self.group_channel(group), channel)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        self.require_valid_group_name(group)
        await self.loop_layer().publish(self.group_channel(group), self.serialize(message))

    async def flush(self) -> None:
        """Forget every channel and group of this loop and close its connections."""
        layer = self._layers.pop(asyncio.get_running_loop(), None)
        if layer is not None:
            await layer.aclose()

    def on_resubscribed(self, hook: Callable[[], None]) -> None:
        """Call `hook` (on this loop) each time subscriptions were lost and made again."""
        self.loop_layer().hooks.append(hook)

    async def reconnect(self) -> None:
        """Drop this loop's subscriber connections and subscribe again (a silent one)."""
        await self.loop_layer().resubscribe_all()


class _NodeReader:
    """The subscriber connection to one primary and the task that reads it."""

    def __init__(self, layer: LoopLayer, name: str, host: str, port: int) -> None:
        self.layer = layer
        self.name = name
        self.redis = Redis(
            host=host, port=port, password=layer.config.password, socket_connect_timeout=min(1.0, layer.config.timeout),
            retry=Retry(NoBackoff(), 0), health_check_interval=0,
        )
        self.pubsub = self.redis.pubsub()
        #: Channels subscribed (or being subscribed) on this node.
        self.channels: set[str] = set()
        self.task = asyncio.get_running_loop().create_task(self._read())

    async def subscribe(self, channels: list[str]) -> None:
        by_slot: dict[int, list[str]] = defaultdict(list)
        for channel in channels:
            by_slot[key_slot(channel.encode())].append(channel)
        self.channels.update(channels)
        for names in by_slot.values():
            await self.pubsub.ssubscribe(*names)

    async def unsubscribe(self, channel: str) -> None:
        self.channels.discard(channel)
        self.layer.leaving.add(channel)
        await self.pubsub.sunsubscribe(channel)

    async def _read(self) -> None:
        layer = self.layer
        while True:
            try:
                if not self.pubsub.subscribed:
                    await asyncio.sleep(0.2)
                    continue
                message = await self.pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a lost connection, MOVED, anything: re-home
                layer.node_failed(self, exc)
                return
            if message is None:
                continue
            kind = message["type"]
            name = message["channel"].decode()
            if kind == "smessage":
                layer.dispatch(name, message["data"])
            elif kind == "ssubscribe":
                layer.confirmed(name)
            elif kind == "sunsubscribe":
                if name in layer.leaving:
                    layer.leaving.discard(name)
                elif name in self.channels:
                    layer.slot_moved(self, name)

    async def aclose(self) -> None:
        self.task.cancel()
        try:
            await self.task
        except BaseException:  # noqa: BLE001 - closing
            pass
        try:
            await self.pubsub.aclose()  # type: ignore[no-untyped-call]
            await self.redis.aclose()
        except Exception:  # noqa: BLE001 - the node may be gone
            pass


class LoopLayer:
    """One event loop's share of the layer: local queues, group members, subscriptions."""

    def __init__(self, config: ShardedChannelLayer) -> None:
        self.config = config
        fix_cluster_node_disconnect()
        startup = [ClusterNode(host, port) for host, port in config.nodes]
        self.cluster = RedisCluster(
            startup_nodes=startup, password=config.password, socket_timeout=config.timeout,
            socket_connect_timeout=min(1.0, config.timeout), retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 3),
        )
        #: Local channel -> its queue of raw messages.
        self.channels: dict[str, asyncio.Queue[bytes]] = {}
        #: Pub/sub channel of a group -> the local channels in it.
        self.groups: dict[str, set[str]] = {}
        self.readers: dict[str, _NodeReader] = {}
        #: Where each wanted pub/sub channel is subscribed (node name).
        self.home: dict[str, str] = {}
        #: Channels this layer unsubscribed itself (their `sunsubscribe` is expected).
        self.leaving: set[str] = set()
        self._confirm: dict[str, asyncio.Future[None]] = {}
        self._lost: set[str] = set()
        self._repair: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._started = False
        self.hooks: list[Callable[[], None]] = []

    # --- API -------------------------------------------------------------------------------

    async def new_channel(self, prefix: str) -> str:
        channel = f"{self.config.prefix}{prefix}{uuid.uuid4().hex}"
        self.channels[channel] = asyncio.Queue()
        await self._subscribe(channel)
        return channel

    async def publish(self, channel: str, data: bytes) -> None:
        await self.cluster.spublish(channel, data)

    async def receive(self, channel: str) -> bytes:
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = asyncio.Queue()
            await self._subscribe(channel)
        try:
            return await queue.get()
        except asyncio.CancelledError:
            # As channels_redis does: a cancelled receive is a consumer going away.
            if self.channels.pop(channel, None) is not None and not self._in_groups(channel):
                await self._unsubscribe(channel)
            raise

    async def group_add(self, group_channel: str, channel: str) -> None:
        if channel not in self.channels:
            raise RuntimeError("group_add() takes a channel made by this process's new_channel()")
        members = self.groups.setdefault(group_channel, set())
        members.add(channel)
        await self._subscribe(group_channel)

    async def group_discard(self, group_channel: str, channel: str) -> None:
        members = self.groups.get(group_channel)
        if not members or channel not in members:
            return
        members.discard(channel)
        if not members:
            del self.groups[group_channel]
            await self._unsubscribe(group_channel)

    def _in_groups(self, channel: str) -> bool:
        return any(channel in members for members in self.groups.values())

    # --- subscriptions ----------------------------------------------------------------------

    async def _subscribe(self, channel: str) -> None:
        """Subscribe on the slot's owner and wait for Redis to confirm it."""
        async with self._lock:
            if channel in self.home or channel in self._lost:
                waiter = self._confirm.get(channel)
            else:
                waiter = self._confirm[channel] = asyncio.get_running_loop().create_future()
                await self._place([channel])
        if waiter is not None:
            await asyncio.wait_for(asyncio.shield(waiter), self.config.timeout)

    async def _unsubscribe(self, channel: str) -> None:
        async with self._lock:
            self._lost.discard(channel)
            self._resolve(channel)
            name = self.home.pop(channel, None)
            reader = self.readers.get(name) if name else None
            if reader is not None:
                try:
                    await reader.unsubscribe(channel)
                except RedisError as exc:
                    reader.channels.discard(channel)
                    log.warning("unsubscribing %s failed (%s); dropping that node's connection", channel, exc)
                    self.node_failed(reader, exc)

    async def _place(self, channels: list[str]) -> None:
        """Subscribe `channels` on the nodes that own their slots now (under the lock)."""
        if not self._started:
            await self.cluster.initialize()
            self._started = True
        by_node: dict[str, list[str]] = defaultdict(list)
        for channel in channels:
            node = self.cluster.get_node_from_key(channel)
            if node is None:
                raise RedisError(f"no node serves the slot of {channel}")
            by_node[node.name].append(channel)
        for name, names in by_node.items():
            reader = self.readers.get(name)
            if reader is None:
                host, _, port = name.rpartition(":")
                reader = self.readers[name] = _NodeReader(self, name, host, int(port))
            for channel in names:
                self.home[channel] = name
            try:
                await reader.subscribe(names)
            except RedisError as exc:
                self.node_failed(reader, exc)

    def confirmed(self, channel: str) -> None:
        self._resolve(channel)

    def _resolve(self, channel: str) -> None:
        waiter = self._confirm.pop(channel, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def dispatch(self, name: str, data: bytes) -> None:
        queue = self.channels.get(name)
        if queue is not None:
            queue.put_nowait(data)
            return
        for channel in self.groups.get(name, ()):
            queue = self.channels.get(channel)
            if queue is not None:
                queue.put_nowait(data)

    # --- repair: one path for a moved slot, a failed-over shard and a lost connection -------

    def slot_moved(self, reader: _NodeReader, channel: str) -> None:
        log.info("%s: Redis unsubscribed it (slot moved or shard failed over); subscribing again", channel)
        reader.channels.discard(channel)
        self._lose([channel])

    def node_failed(self, reader: _NodeReader, exc: BaseException) -> None:
        if self.readers.get(reader.name) is not reader:
            return
        # One warning per outage: while a repair runs, its own retries fail the same way.
        level = logging.DEBUG if self._repairing() else logging.WARNING
        log.log(level, "sharded pub/sub on %s lost (%s: %s); subscribing again", reader.name,
                exc.__class__.__name__, exc)
        del self.readers[reader.name]
        lost = [c for c in reader.channels if self.home.get(c) == reader.name]
        reader.channels.clear()
        asyncio.get_running_loop().create_task(reader.aclose())
        self._lose(lost)

    def _repairing(self) -> bool:
        return self._repair is not None and not self._repair.done()

    def _lose(self, channels: list[str]) -> None:
        for channel in channels:
            self.home.pop(channel, None)
        self._lost.update(channels)
        if not self._repairing():
            self._repair = asyncio.get_running_loop().create_task(self._repair_loop())

    async def resubscribe_all(self) -> None:
        async with self._lock:
            readers = list(self.readers.values())
        for reader in readers:
            self.node_failed(reader, ConnectionError("asked to reconnect"))
        if self._repair is not None:
            await asyncio.shield(self._repair)

    async def _repair_loop(self) -> None:
        delay = 0.05
        while self._lost:
            await asyncio.sleep(delay)
            wanted: list[str] = []
            try:
                async with self._lock:
                    await self.cluster.nodes_manager.initialize()
                    wanted = [c for c in self._lost if c in self.channels or c in self.groups]
                    self._lost.clear()
                    loop = asyncio.get_running_loop()
                    waiting = [self._confirm.setdefault(c, loop.create_future()) for c in wanted]
                    await self._place(wanted)
                await self._confirmed(wanted, waiting)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the cluster is still settling: try again
                # A failover takes the cluster a second or two: one warning, then quieter.
                level = logging.WARNING if delay == 0.05 else logging.DEBUG
                log.log(level, "subscribing again failed (%s: %s); retrying", exc.__class__.__name__, exc)
                async with self._lock:
                    unconfirmed = [c for c in wanted if c in self._confirm]
                    for channel in unconfirmed:
                        self.home.pop(channel, None)
                    self._lost.update(unconfirmed)
                delay = min(delay * 2, 1.0)
                continue
            if not self._lost:
                log.info("sharded pub/sub subscribed again (%d channels)", len(wanted))
                for hook in list(self.hooks):
                    hook()

    async def _confirmed(self, wanted: list[str], waiting: list[asyncio.Future[None]]) -> None:
        """Wait until Redis has confirmed every subscription; give up early when one of
        them is lost again (the topology was not settled yet), or at the timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.timeout
        while not all(w.done() for w in waiting):
            if self._lost.intersection(wanted):
                raise RedisError("a subscription was lost again while subscribing")
            if loop.time() > deadline:
                raise TimeoutError(f"Redis confirmed no subscription within {self.config.timeout} s")
            await asyncio.sleep(0.02)

    async def aclose(self) -> None:
        if self._repair is not None:
            self._repair.cancel()
        for reader in list(self.readers.values()):
            await reader.aclose()
        self.readers.clear()
        await self.cluster.aclose()
