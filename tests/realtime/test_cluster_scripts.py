"""Scripts in pipelines on Redis Cluster (realtime/scripts.py): EVALSHA routed by each
script's keys, and after NOSCRIPT (a promoted replica, a flushed node) the scripts are
loaded on every primary and the pipeline runs once more; pipelined appends load the append
script first on each node they go to. And a command or pipeline on a connection closed under it
(realtime.cluster_layer's fix) is retried."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import uvloop
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot

from realtime.backlog import AppendItem, Backlog
from realtime.cluster_layer import fix_cluster_node_disconnect
from realtime.names import stream_keys
from realtime.publishing import SERVER, message_tail
from realtime.scripts import ScriptPipeline, pipelined
from tests.cluster_set import ClusterSet

pytestmark = pytest.mark.slow
ECHO = "return {KEYS[1], ARGV[1]}"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ClusterSet]:
    with ClusterSet(tmp_path / "cluster", primaries=3, replicas_per_primary=0) as nodes:
        yield nodes


async def test_a_pipeline_of_scripts_runs_on_every_shard_even_after_the_scripts_are_flushed(
        cluster: ClusterSet) -> None:
    client = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", cluster.ports[0])], decode_responses=True)
    try:
        echo = client.register_script(ECHO)
        keys = [f"{{k{n}}}:x" for n in range(30)]
        assert len({cluster.owner_port(key_slot(k.encode())) for k in keys}) == 3

        async def build(pipe: ScriptPipeline) -> None:
            for n, key in enumerate(keys):
                await pipe.run(echo, [key], [n])

        wanted = [[key, str(n)] for n, key in enumerate(keys)]
        for port in cluster.primary_ports():  # nobody knows the script yet
            with redis.Redis(port=port) as node:
                node.script_flush()
        assert await pipelined(client, build) == wanted
        for port in cluster.primary_ports():
            with redis.Redis(port=port) as node:
                assert node.script_exists(echo.sha) == [True]
                node.script_flush()
        assert await pipelined(client, build) == wanted
    finally:
        await client.aclose()


def test_a_connection_closed_under_a_command_is_retried_not_raised(cluster: ClusterSet) -> None:
    """redis-py 8.1 can close a connection while another task holds it (a topology
    refresh); under uvloop the write then raises RuntimeError. The fix in
    realtime.cluster_layer makes it the ConnectionError the cluster client retries."""
    fix_cluster_node_disconnect()

    async def closed_under_commands() -> list[object]:
        client = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", cluster.ports[0])], decode_responses=True)
        keys = [f"{{k{n}}}:y" for n in range(30)]
        try:
            for key in keys:
                await client.set(key, "before")

            def close_every_idle_transport() -> None:
                for node in client.get_primaries():
                    for connection in node._free:
                        connection._writer.transport.close()

            close_every_idle_transport()
            results: list[object] = [await client.set(key, "after") for key in keys]
            close_every_idle_transport()
            async with client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.get(key)
                results.extend(await pipe.execute())
            return results
        finally:
            await client.aclose()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(closed_under_commands()) == [True] * 30 + ["after"] * 30


async def test_appends_pipelined_over_every_shard_run_once_even_after_noscript(cluster: ClusterSet) -> None:
    """Backlog.append_many in a cluster: one pipeline per shard, each led by a SCRIPT LOAD
    on its node, so that a primary that does not know the append script (flushed here, as
    on a promoted replica) runs every append once, in order: an append without an id is
    never stored twice, nor after the ones queued behind it."""
    client = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", cluster.ports[0])], decode_responses=True)
    try:
        backlog = Backlog(client, prefix="t", buckets=1024, size=100, ttl=600, idempotency_ttl=600, sharded=True)
        streams = [f"live:many{n}" for n in range(12)]
        owners = {cluster.owner_port(key_slot(stream_keys("t", s, 1024).meta.encode())) for s in streams}
        assert len(owners) == 3
        items = [AppendItem(streams[n % 12], message_tail(n, SERVER, 1), "k", None, False) for n in range(36)]
        for round_ in range(2):
            for port in cluster.primary_ports()[:2]:  # two shards forget the script, one knows it
                with redis.Redis(port=port) as node:
                    node.script_flush()
            stored = await backlog.append_many(items)
            assert [a.seq for a in stored] == [1 + round_ * 3 + n // 12 for n in range(36)]  # type: ignore[union-attr]
            for port in cluster.primary_ports():
                with redis.Redis(port=port) as node:
                    assert node.script_exists(backlog._append.sha) == [True]
        for stream in streams:
            frames = (await backlog.read(stream, 1, 100)).frames
            assert [json.loads(f)["seq"] for f in frames] == list(range(1, 7)), stream
    finally:
        await client.aclose()
