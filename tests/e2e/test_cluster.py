"""The server on Redis Cluster (docs/protocol.md 1.1, "Redis topologies"): two server
processes on a real cluster of 3 primaries and 3 replicas, publishers racing over
WebSocket, 50 subscribers, streams on every shard. Each stream keeps 1..N, once each
and in order, while nothing moves, while a slot is moved live under it, and when a
shard's primary is SIGKILLed (or the loss is announced with a new epoch)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from redis.crc import key_slot

from realtime.names import stream_keys
from tests.cluster_set import ClusterSet
from tests.delivery import check_order_and_holes
from tests.metrics_text import metric
from tests.tokens import mint
from tests.wsclient import Client

pytestmark = pytest.mark.slow
BUCKETS = 1024  # the cluster default (config/settings.py)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ClusterSet]:
    with ClusterSet(tmp_path / "cluster", primaries=3, replicas_per_primary=1) as nodes:
        yield nodes


def slot_of(stream: str) -> int:
    """The slot of every key of `stream` (and of its group's channel) in this test."""
    return key_slot(stream_keys(settings.RT_KEY_PREFIX, stream, BUCKETS).meta.encode())


def streams_on_every_shard(cluster: ClusterSet, per_shard: int) -> list[str]:
    picked: dict[int, list[str]] = {port: [] for port in cluster.primary_ports()}
    n = 0
    while any(len(names) < per_shard for names in picked.values()):
        stream = f"live:c{n}"
        names = picked[cluster.owner_port(slot_of(stream))]
        if len(names) < per_shard:
            names.append(stream)
        n += 1
    return [s for names in picked.values() for s in names]


def servers(start_server: Any, cluster: ClusterSet) -> list[Any]:
    env = dict(REDIS_CLUSTER_NODES=cluster.nodes_env, REDIS_URL="", RT_POSITION_CHECK="0.5", RT_REDIS_TIMEOUT="2")
    return [start_server("uvicorn", **env), start_server("uvicorn", **env)]


class Subscriber:
    """Every `message` and `subscribed` frame, per stream, as it came."""

    def __init__(self, client: Client, streams: list[str]) -> None:
        self.client = client
        self.frames: dict[str, list[dict[str, Any]]] = {s: [] for s in streams}
        self.task: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, url: str, streams: list[str]) -> Subscriber:
        sub = cls(await Client.connect(url), streams)
        for stream in streams:
            sub.frames[stream].append(await sub.client.subscribe(stream))
        sub.task = asyncio.create_task(sub._read())
        return sub

    async def _read(self) -> None:
        while True:
            frame = await self.client.recv(120)
            if frame.get("stream") in self.frames and frame["type"] in ("message", "subscribed"):
                self.frames[frame["stream"]].append(frame)

    def messages(self, stream: str) -> list[dict[str, Any]]:
        return [f for f in self.frames[stream] if f["type"] == "message"]

    def refused(self, stream: str) -> list[dict[str, Any]]:
        return [f for f in self.frames[stream] if f["type"] == "subscribed" and not f["recovered"]]

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        await self.client.close()


async def publish_all(client: Client, name: str, streams: list[str], count: int, acks: list[dict[str, Any]],
                      pause: float = 0.0) -> None:
    """Publish `count` messages, round robin over `streams`; `unavailable` is retried with
    the same id (the idempotency record makes the retry the same message)."""
    for i in range(count):
        id_, stream = f"{name}-{i}", streams[i % len(streams)]
        while True:
            await client.send({"type": "publish", "stream": stream, "data": {"id": id_}, "id": id_})
            reply = await client.recv(30)
            if reply["type"] == "ack":
                acks.append({**reply, "stream": stream, "data": {"id": id_}})
                break
            assert reply["code"] in ("unavailable", "rate_limited"), reply
            await asyncio.sleep(reply.get("retry_after") or 0.2)
        if pause:
            await asyncio.sleep(pause)


async def run(start_server: Any, cluster: ClusterSet, streams: list[str], per_publisher: int, during: Any,
              pause: float = 0.0) -> tuple[list[Subscriber], list[dict[str, Any]], list[str]]:
    """50 subscribers and 4 racing publishers over two servers; `during(acks)` runs
    mid-run (a slot move, a SIGKILL). Returns once every subscriber has the last ack."""
    srvs = servers(start_server, cluster)
    subs = [await Subscriber.connect(srvs[n % 2].ws, streams) for n in range(50)]
    publishers = [await Client.connect(srvs[n % 2].ws + "?token=" + mint(sub=f"pub{n}", pubs=["live:*"])) for n in range(4)]
    acks: list[dict[str, Any]] = []
    tasks = [asyncio.create_task(publish_all(p, f"p{n}", streams, per_publisher, acks, pause)) for n, p in enumerate(publishers)]
    await during(acks)
    await asyncio.wait_for(asyncio.gather(*tasks), 120)
    last = {}
    for ack in acks:
        if (ack["epoch"], ack["seq"]) > last.get(ack["stream"], ("", 0)):
            last[ack["stream"]] = (ack["epoch"], ack["seq"])
    deadline = time.monotonic() + 30
    while not all(
        any((m["epoch"], m["seq"]) == last[s] for m in sub.messages(s)) for sub in subs for s in streams
    ):
        assert time.monotonic() < deadline, "subscribers did not reach the last acknowledged message"
        await asyncio.sleep(0.1)
    async with httpx.AsyncClient() as http:
        texts = [(await http.get(srv.http + "/metrics")).text for srv in srvs]
    for client in publishers:
        await client.close()
    for sub in subs:
        await sub.close()
    return subs, acks, texts


def assert_all_once_in_order(subs: list[Subscriber], acks: list[dict[str, Any]], streams: list[str]) -> None:
    """Each stream's subscribers got exactly the acknowledged seqs 1..N, in order, once each."""
    for stream in streams:
        mine = [a for a in acks if a["stream"] == stream]
        assert len({a["epoch"] for a in mine}) == 1, f"{stream} changed epoch"
        assert sorted(a["seq"] for a in mine) == list(range(1, len(mine) + 1))
        by_seq = {a["seq"]: a["data"] for a in mine}
        for sub in subs:
            got = sub.messages(stream)
            assert [m["seq"] for m in got] == list(range(1, len(mine) + 1)), (stream, [m["seq"] for m in got][:20])
            assert all(m["data"] == by_seq[m["seq"]] for m in got)
            assert sub.refused(stream) == []


async def test_racing_publishers_on_every_shard_reach_50_subscribers_in_order(start_server: Any, cluster: ClusterSet) -> None:
    streams = streams_on_every_shard(cluster, 2)
    assert len({cluster.owner_port(slot_of(s)) for s in streams}) == 3

    async def nothing(acks: list[dict[str, Any]]) -> None:
        return None

    subs, acks, _ = await run(start_server, cluster, streams, 60, nothing)
    assert len(acks) == 240
    assert_all_once_in_order(subs, acks, streams)


async def test_a_slot_moved_live_mid_stream_loses_nothing_and_repeats_nothing(start_server: Any, cluster: ClusterSet) -> None:
    streams = streams_on_every_shard(cluster, 1)
    moving = streams[0]
    slot = slot_of(moving)
    source = cluster.owner_port(slot)
    target = next(p for p in cluster.primary_ports() if p != source)

    async def move(acks: list[dict[str, Any]]) -> None:
        while len(acks) < 40:
            await asyncio.sleep(0.02)
        # Publishing goes on while the slot is half moved: the idempotency keys of the
        # moving stream go over in batches, a pause after each.
        await asyncio.to_thread(cluster.move_slot, slot, target, lambda: time.sleep(0.05))
        moved_at.append(len(acks))

    moved_at: list[int] = []
    subs, acks, texts = await run(start_server, cluster, streams, 60, move, pause=0.01)
    assert cluster.owner_port(slot) == target
    assert moved_at[0] < 200, "the move ended after publishing did: it was not mid-stream"
    assert len(acks) == 240
    assert_all_once_in_order(subs, acks, streams)
    print("slot move:", {"repaired": sum(int(metric(t, "rt_layer_subscriptions_repaired_total")) for t in texts),
                         "filled": sum(int(metric(t, "rt_holes_filled_total")) for t in texts)})


async def test_a_shard_primary_killed_loses_nothing_silently(start_server: Any, cluster: ClusterSet) -> None:
    streams = streams_on_every_shard(cluster, 1)
    victim = cluster.owner_port(slot_of(streams[0]))

    async def kill(acks: list[dict[str, Any]]) -> None:
        while len(acks) < 40:
            await asyncio.sleep(0.02)
        cluster.kill(victim)
        await asyncio.to_thread(cluster.wait_for_failover, victim)
        failed_over_at.append(len(acks))

    failed_over_at: list[int] = []
    subs, acks, texts = await run(start_server, cluster, streams, 60, kill, pause=0.01)
    assert failed_over_at[0] < 200, "the failover ended after publishing did: it was not mid-stream"
    assert len({a["data"]["id"] for a in acks}) == 240
    seen: dict[tuple[str, str, int], Any] = {}
    for sub in subs:
        for stream in streams:
            check_order_and_holes(sub.frames[stream])
            got = {(m["epoch"], m["seq"]) for m in sub.messages(stream)}
            wanted = {(a["epoch"], a["seq"]) for a in acks if a["stream"] == stream}
            if not wanted <= got:
                assert sub.refused(stream), f"{stream}: acknowledged messages missing without recovered: false"
            for m in sub.messages(stream):
                key = (stream, m["epoch"], m["seq"])
                assert seen.setdefault(key, m["data"]) == m["data"], f"{key} names two messages"
    # The streams of the other shards saw nothing of it.
    assert_all_once_in_order(subs, acks, streams[1:])
    print("shard failover:", {"announced": sum(int(metric(t, "rt_recoveries_refused_total")) for t in texts),
                              "repaired": sum(int(metric(t, "rt_layer_subscriptions_repaired_total")) for t in texts)})
