"""The sharded pub/sub channel layer (realtime/cluster_layer.py) on its own, against a real
Redis Cluster of 3 primaries and 3 replicas: what channels_redis's own pub/sub layer tests
check (send and receive, order, groups, group discard, new_channel), across two layer
instances standing for two server processes, with groups on every shard; then a slot
moved live and a primary SIGKILLed under a subscribed group, after which the layer calls
its hook and delivers again."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot

from realtime.cluster_layer import ShardedChannelLayer, group_channel_name, parse_nodes
from tests.cluster_set import ClusterSet

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterSet]:
    """One cluster for the tests that move nothing."""
    with ClusterSet(tmp_path_factory.mktemp("cluster")) as nodes:
        yield nodes


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ClusterSet]:
    """A cluster of its own for a test that moves a slot or kills a node."""
    with ClusterSet(tmp_path / "cluster") as nodes:
        yield nodes


def tag_of(group: str) -> str | None:
    """The hash tag of groups named `tag.rest`, so that a test can put a group on a shard."""
    return group.split(".", 1)[0] if "." in group else None


def make_layer(nodes: ClusterSet) -> ShardedChannelLayer:
    return ShardedChannelLayer(nodes=nodes.nodes_env.split(","), prefix="t", group_tag=tag_of, timeout=5)


async def two_layers(nodes: ClusterSet) -> AsyncIterator[tuple[ShardedChannelLayer, ShardedChannelLayer]]:
    """Two layer instances: each has its own connections, as two processes would."""
    first, second = make_layer(nodes), make_layer(nodes)
    yield first, second
    await first.flush()
    await second.flush()


@pytest.fixture
async def two(shared_cluster: ClusterSet) -> AsyncIterator[tuple[ShardedChannelLayer, ShardedChannelLayer]]:
    async for layers in two_layers(shared_cluster):
        yield layers


def groups_on_every_shard(nodes: ClusterSet) -> list[str]:
    """One group name per primary (its channel hashes to a slot that primary owns)."""
    found: dict[int, str] = {}
    n = 0
    while len(found) < len(nodes.primary_ports()):
        group = f"g{n}.chat"
        slot = key_slot(group_channel_name("t", group, tag_of(group)).encode())
        found.setdefault(nodes.owner_port(slot), group)
        n += 1
    return list(found.values())


def subscribers(port: int, channel: str) -> int:
    with redis.Redis(port=port) as node:
        return int(node.execute_command("PUBSUB", "SHARDNUMSUB", channel)[1])


async def receive_none(layer: ShardedChannelLayer, channel: str, wait: float = 0.5) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(channel), wait)


async def test_send_receive(two: tuple[ShardedChannelLayer, ShardedChannelLayer]) -> None:
    mine, other = two
    channel = await mine.new_channel()
    await other.send(channel, {"type": "test.message", "text": "Ahoy-hoy!", "raw": b"\x00\xff"})
    assert await asyncio.wait_for(mine.receive(channel), 5) == {"type": "test.message", "text": "Ahoy-hoy!",
                                                                   "raw": b"\x00\xff"}


async def test_messages_on_a_channel_keep_their_order(two: tuple[ShardedChannelLayer, ShardedChannelLayer]) -> None:
    mine, other = two
    channel = await mine.new_channel()
    for n in range(1, 4):
        await other.send(channel, {"type": f"message.{n}"})
    assert [(await asyncio.wait_for(mine.receive(channel), 5))["type"] for _ in range(3)] == [
        "message.1", "message.2", "message.3"]


async def test_groups_on_every_shard_reach_members_in_both_processes_and_not_the_discarded(
        shared_cluster: ClusterSet, two: tuple[ShardedChannelLayer, ShardedChannelLayer]) -> None:
    mine, other = two
    groups = groups_on_every_shard(shared_cluster)
    assert len(groups) == 3
    for group in groups:
        one, two_, three = [await mine.new_channel("test-gr-chan-1"), await mine.new_channel("test-gr-chan-2"),
                            await other.new_channel("test-gr-chan-3")]
        await mine.group_add(group, one)
        await mine.group_add(group, two_)
        await other.group_add(group, three)
        await mine.group_discard(group, two_)
        await other.group_send(group, {"type": "message.1", "group": group})
        assert (await asyncio.wait_for(mine.receive(one), 5))["group"] == group
        assert (await asyncio.wait_for(other.receive(three), 5))["group"] == group
        await receive_none(mine, two_)


async def test_channels_with_the_same_prefix_all_get_a_group_message(
        two: tuple[ShardedChannelLayer, ShardedChannelLayer]) -> None:
    mine, other = two
    channels = [await mine.new_channel("test-gr-chan") for _ in range(3)]
    for channel in channels:
        await mine.group_add("same-prefix", channel)
    await other.group_send("same-prefix", {"type": "message.1"})
    for channel in channels:
        assert (await asyncio.wait_for(mine.receive(channel), 5))["type"] == "message.1"


async def test_new_channel_names_stay_unique_when_the_random_seed_is_reset(
        two: tuple[ShardedChannelLayer, ShardedChannelLayer]) -> None:
    mine, _ = two
    random.seed(1)
    first = await mine.new_channel()
    random.seed(1)
    assert await mine.new_channel() != first
    assert first.startswith("tspecific.")


async def test_the_last_member_leaving_unsubscribes_the_group_on_its_shard(
        shared_cluster: ClusterSet, two: tuple[ShardedChannelLayer, ShardedChannelLayer]) -> None:
    mine, _ = two
    group = "leave.room"
    channel_name = group_channel_name("t", group, "leave")
    owner = shared_cluster.owner_port(key_slot(channel_name.encode()))
    members = [await mine.new_channel(), await mine.new_channel()]
    for member in members:
        await mine.group_add(group, member)
    assert subscribers(owner, channel_name) == 1  # one subscription per process, not per member
    await mine.group_discard(group, members[0])
    assert subscribers(owner, channel_name) == 1
    await mine.group_discard(group, members[1])
    await mine.group_discard(group, members[1])  # twice is harmless
    await asyncio.sleep(0.1)
    assert subscribers(owner, channel_name) == 0


async def test_a_cancelled_receive_gives_up_its_channel(
        shared_cluster: ClusterSet, two: tuple[ShardedChannelLayer, ShardedChannelLayer]) -> None:
    mine, _ = two
    channel = await mine.new_channel()
    owner = shared_cluster.owner_port(key_slot(channel.encode()))
    assert subscribers(owner, channel) == 1
    await receive_none(mine, channel, 0.2)
    await asyncio.sleep(0.1)
    assert subscribers(owner, channel) == 0


async def test_wrong_names_are_refused_before_redis_is_asked(
        two: tuple[ShardedChannelLayer, ShardedChannelLayer]) -> None:
    mine, _ = two
    channel = await mine.new_channel()
    with pytest.raises(TypeError):
        await mine.send("no spaces allowed", {"type": "x"})
    with pytest.raises(TypeError):
        await mine.group_add("g" * 200, channel)
    with pytest.raises(TypeError):
        await mine.group_send("bad group!", {"type": "x"})
    with pytest.raises(RuntimeError, match="new_channel"):
        await mine.group_add("group", "tspecific.not-made-here")


def test_node_lists_are_read_or_refused_clearly() -> None:
    assert parse_nodes(["10.0.0.1:7000", " [::1]:7001 ", ("h", "7002")]) == [
        ("10.0.0.1", 7000), ("::1", 7001), ("h", 7002)]
    for wrong in (["10.0.0.1"], ["host:port"], [":7000"]):
        with pytest.raises(ValueError, match="host:port"):
            parse_nodes(wrong)
    with pytest.raises(ValueError, match="at least one"):
        parse_nodes([])


def test_a_tagged_group_channel_lies_in_its_tag_slot() -> None:
    assert group_channel_name("asgi", "room.x") == "asgi__group__room.x"
    tagged = group_channel_name("asgi", "room.x", "rt:7")
    assert tagged == "asgi__group__{rt:7}room.x"
    assert key_slot(tagged.encode()) == key_slot(b"rt:7")


@pytest.fixture
async def pair(cluster: ClusterSet) -> AsyncIterator[tuple[ShardedChannelLayer, ShardedChannelLayer]]:
    """Two layer instances on a cluster of their own."""
    async for layers in two_layers(cluster):
        yield layers


async def delivers_across(pair: tuple[ShardedChannelLayer, ShardedChannelLayer], tag: str,
                          disrupt: Callable[[int], Awaitable[int]], within: float) -> None:
    """A group of the slot of `tag` gets a message, `disrupt(slot)` moves or fails that
    slot's shard and returns the new owner's port; then the layer has called its hook, is
    subscribed there, and the group gets the next message."""
    mine, other = pair
    group = f"{tag}.room"
    member = await mine.new_channel()
    await mine.group_add(group, member)
    await other.group_send(group, {"type": "before"})
    assert (await asyncio.wait_for(mine.receive(member), 5))["type"] == "before"
    repaired = asyncio.Event()
    mine.on_resubscribed(repaired.set)
    owner = await disrupt(key_slot(tag.encode()))
    await asyncio.wait_for(repaired.wait(), within)
    assert subscribers(owner, group_channel_name("t", group, tag)) == 1
    # The sender's cluster client finds the new owner too.
    await other.group_send(group, {"type": "after"})
    assert (await asyncio.wait_for(mine.receive(member), 5))["type"] == "after"


async def test_a_group_survives_its_slot_moving_live(
        cluster: ClusterSet, pair: tuple[ShardedChannelLayer, ShardedChannelLayer]) -> None:
    async def move(slot: int) -> int:
        target = next(port for port in cluster.primary_ports() if port != cluster.owner_port(slot))
        await asyncio.to_thread(cluster.move_slot, slot, target)
        return target

    await delivers_across(pair, "move", move, within=10)


async def test_a_group_survives_its_shard_failing_over(
        cluster: ClusterSet, pair: tuple[ShardedChannelLayer, ShardedChannelLayer]) -> None:
    async def fail_over(slot: int) -> int:
        victim = cluster.owner_port(slot)
        cluster.kill(victim)
        return await asyncio.to_thread(cluster.wait_for_failover, victim)

    await delivers_across(pair, "fail", fail_over, within=20)
