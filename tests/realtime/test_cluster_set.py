"""The Redis Cluster fixture (tests/cluster_set.py) does what the cluster tests rely on:
it starts and serves keys on every shard, moves a slot live with its keys, and fails a
killed primary over to its replica, which redis-py's cluster client then follows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.cluster_set import ClusterSet

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ClusterSet]:
    """Three primaries with a replica each."""
    with ClusterSet(tmp_path / "cluster") as nodes:
        yield nodes


def client_of(nodes: ClusterSet) -> redis.RedisCluster:
    return redis.RedisCluster(host="127.0.0.1", port=nodes.ports[0], decode_responses=True)


def keyslot(nodes: ClusterSet, key: str) -> int:
    with redis.Redis(port=nodes.ports[0], decode_responses=True) as admin:
        return int(admin.execute_command("CLUSTER", "KEYSLOT", key))


def test_three_primaries_with_replicas_serve_keys_on_every_shard(cluster: ClusterSet) -> None:
    assert len(cluster.nodes_env.split(",")) == 6
    primaries = cluster.primary_ports()
    assert len(primaries) == 3
    assert len({cluster.replica_of(port) for port in primaries} - set(primaries)) == 3
    with client_of(cluster) as client:
        keys = [f"key:{n}" for n in range(60)]
        for key in keys:
            client.set(key, key.upper())
        assert {cluster.owner_port(keyslot(cluster, key)) for key in keys} == set(primaries)
        assert [client.get(key) for key in keys] == [key.upper() for key in keys]


def test_move_slot_takes_its_keys_to_the_target(cluster: ClusterSet) -> None:
    keys = [f"{{moved}}:{n}" for n in range(250)]
    slot = keyslot(cluster, keys[0])
    source = cluster.owner_port(slot)
    target = next(port for port in cluster.primary_ports() if port != source)
    with client_of(cluster) as client:
        for key in keys:
            client.set(key, f"value of {key}")
        read_midway: list[object] = []
        # Half moved: the client follows ASK to the target for the keys already there.
        cluster.move_slot(slot, target, between_batches=lambda: read_midway.extend(client.get(k) for k in keys[:150]))
        assert len(read_midway) == 3 * 150  # 250 keys in batches of 100
        assert read_midway == [f"value of {key}" for key in keys[:150]] * 3
        assert cluster.owner_port(slot) == target
        with redis.Redis(port=source, decode_responses=True) as old, redis.Redis(port=target, decode_responses=True) as new:
            assert int(old.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot)) == 0
            assert int(new.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot)) == 250
            assert new.get(keys[0]) == f"value of {keys[0]}"  # served there, no MOVED
        assert [client.get(key) for key in keys] == [f"value of {key}" for key in keys]


def test_a_killed_primary_fails_over_to_its_replica(cluster: ClusterSet) -> None:
    keys = [f"{{failover}}:{n}" for n in range(20)]
    slot = keyslot(cluster, keys[0])
    old = cluster.owner_port(slot)
    replica = cluster.replica_of(old)
    with client_of(cluster) as client:
        for key in keys:
            client.set(key, key)
        with redis.Redis(port=old) as primary:
            assert primary.wait(1, 5000) == 1  # on the replica before the kill
        cluster.kill(old)
        assert cluster.wait_for_failover(old) == replica
        assert cluster.owner_port(slot) == replica
        assert old not in cluster.primary_ports()
        assert [client.get(key) for key in keys] == keys  # the client finds the new primary
        cluster.restart(old)
        assert cluster.replica_of(replica) == old  # back, as the new primary's replica


@pytest.fixture
def single(tmp_path: Path) -> Iterator[ClusterSet]:
    """One primary holding every slot, no replica: what `redis-cli --cluster create` refuses."""
    with ClusterSet(tmp_path / "single", primaries=1, replicas_per_primary=0) as nodes:
        yield nodes


def test_a_single_primary_without_replicas_serves_every_slot(single: ClusterSet) -> None:
    (port,) = single.ports
    assert single.nodes_env == f"127.0.0.1:{port}"
    assert single.primary_ports() == [port]
    assert single.owner_port(0) == single.owner_port(16383) == port
    with client_of(single) as client:
        for n in range(20):
            client.set(f"single:{n}", n)
        assert [client.get(f"single:{n}") for n in range(20)] == [str(n) for n in range(20)]
