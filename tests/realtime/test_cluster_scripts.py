"""Scripts in pipelines on Redis Cluster (realtime/scripts.py): EVALSHA routed by each
script's keys, and after NOSCRIPT (a promoted replica, a flushed node) the scripts are
loaded on every primary and the pipeline runs once more."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot

from realtime.scripts import ScriptPipeline, pipelined
from tests.cluster_set import ClusterSet

pytestmark = pytest.mark.slow
ECHO = "return {KEYS[1], ARGV[1]}"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ClusterSet]:
    nodes = ClusterSet(tmp_path / "cluster", primaries=3, replicas_per_primary=0)
    nodes.start()
    yield nodes
    nodes.stop()


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
