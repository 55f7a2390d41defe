"""The `cluster` profile of docker-compose.yml up for real: six Redis Cluster nodes formed
by `cluster-init` into 3 primaries with a replica each, the web replicas and the archiver
on the cluster by themselves (the entry point finds the nodes by name), used only
through nginx.

Streams on every shard are published over the HTTP API and read back; one shard's
primary is killed (`docker kill`), its replica takes over, and publishing goes on with no
web container restarted. Everything acknowledged is read back once, in order, or its
stream moved to a new epoch (the loss announced, never silent).

Collected through test_compose.py, like ha_profile.py. Run with `.venv/bin/pytest -m deploy`.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from realtime.names import stream_keys
from tests.deploy.conftest import DOCKER, SERVICES, Progress, Stack, compose_stack, output
from tests.deploy.ha_profile import Publisher, started_at

pytestmark = [pytest.mark.slow, pytest.mark.deploy, pytest.mark.timeout(1800)]

NODES = tuple(f"redis-node{n}" for n in range(1, 7))
# A network of its own: the other stacks may still be up beside it.
CLUSTER_ENV = {"RT_NET": "172.30.59"}
CHOSEN = ("[topology] Redis: Redis Cluster (" + ",".join(f"{name}:6379" for name in NODES)
          + "): the cluster profile runs")
FAILOVER_SECONDS = 60


@pytest.fixture(scope="module")
def cluster_stack(images: Path, progress: Progress) -> Iterator[Stack]:
    progress("docker-compose --profile cluster up -d")
    with compose_stack(images, progress, profiles=("cluster",), env=CLUSTER_ENV) as stack:
        yield stack


class Nodes:
    """redis-cli in the cluster's node containers (`docker exec`)."""

    def __init__(self, stack: Stack) -> None:
        self.ids = {name: stack.container(name) for name in NODES}
        self.by_address = {f"{stack.address(name)}:6379": name for name in NODES}

    def cli(self, node: str, *args: str) -> str:
        return output([DOCKER, "exec", self.ids[node], "redis-cli", *args])

    def roles(self, asking: str) -> dict[str, str]:
        """Each node's role as `asking` sees it (CLUSTER NODES): master, slave or fail."""
        roles = {}
        for line in self.cli(asking, "CLUSTER", "NODES").splitlines():
            fields = line.split()
            address, flags = fields[1].split("@")[0], set(fields[2].split(","))
            role = "fail" if flags & {"fail", "fail?"} else "master" if "master" in flags else "slave"
            roles[self.by_address[address]] = role
        return roles

    def state(self, node: str) -> str:
        info = dict(line.strip().split(":", 1) for line in self.cli(node, "CLUSTER", "INFO").splitlines() if ":" in line)
        return info["cluster_state"]


def shard_of(nodes: Nodes, stream: str) -> str:
    """The primary that holds `stream`'s counter (its keys' bucket: RT_BUCKETS is 1024)."""
    key = stream_keys("rt", stream, 1024).meta
    for node, role in nodes.roles(NODES[0]).items():
        if role == "master" and nodes.cli(node, "--scan", "--pattern", key).strip() == key:
            return node
    raise AssertionError(f"no primary holds {key}")


def test_the_cluster_profile_serves_every_shard_and_survives_a_primary_killed(
        cluster_stack: Stack, progress: Progress) -> None:
    stack = cluster_stack
    init = stack.inspect("cluster-init")["State"]
    assert (init["Status"], init["ExitCode"]) == ("exited", 0), init
    nodes = Nodes(stack)
    roles = nodes.roles(NODES[0])
    assert sorted(roles.values()) == ["master"] * 3 + ["slave"] * 3, roles
    assert all(nodes.state(node) == "ok" for node in NODES)
    progress(f"cluster-init formed the cluster: {roles}")
    for service in SERVICES[1:4]:
        said = subprocess.run([DOCKER, "logs", stack.container(service)], capture_output=True, text=True, timeout=60).stderr
        assert CHOSEN in said.splitlines(), (service, said[:2000])
    progress("web1, web2 and the archiver found the cluster's nodes by themselves")

    run = uuid.uuid4().hex[:8]
    publishers = {}
    with httpx.Client(base_url=stack.base, timeout=10) as http:
        for answer in (http.get("/readyz") for _ in range(4)):
            assert answer.status_code == 200, answer.text
            assert len(answer.json()["primary"].split(",")) == 3, answer.json()
        progress("/readyz from both replicas names the three primaries")
        n = 0
        while len({shard for shard, _ in publishers.values()}) < 3 or len(publishers) < 6:
            stream = f"live:deploy-cluster-{run}-{n}"
            publisher = Publisher(stack, stream)
            for i in range(1, 6):
                publisher.publish(i)
            publishers[stream] = (shard_of(nodes, stream), publisher)
            n += 1
        progress(f"published to {len(publishers)} streams, on all three primaries: "
                 + ", ".join(sorted({shard for shard, _ in publishers.values()})))
        web_before = started_at(stack)

        victim = next(shard for shard, _ in publishers.values())
        progress(f"docker kill {victim} (a primary), then publishing on at once")
        killed_at = time.monotonic()
        output([DOCKER, "kill", nodes.ids[victim]])
        # The victim's streams answer `unavailable` until its replica takes over; each
        # publish is retried with the same id until acknowledged.
        for _, publisher in publishers.values():
            for i in range(6, 11):
                publisher.publish(i, seconds=FAILOVER_SECONDS)
        refused = sum(p.refused for _, p in publishers.values())
        progress(f"published 5 more to each stream, {time.monotonic() - killed_at:.1f} s after the kill; "
                 f"{refused} unavailable answers retried with the same id")
        survivor = next(node for node in NODES if node != victim)
        roles = nodes.roles(survivor)
        assert list(roles.values()).count("master") == 3 and roles[victim] == "fail", roles
        assert nodes.state(survivor) == "ok"
        assert refused > 0, "no publish met the failover: it was not mid-stream"
        progress(f"a replica took over from {victim}: {roles}")

        for stream, (shard, publisher) in publishers.items():
            read = http.get(f"/api/streams/{stream}/messages", params={"limit": 100})
            assert read.status_code == 200, read.text
            got = [(m["seq"], m["data"]["n"]) for m in read.json()["messages"]]
            if len(publisher.epochs) == 1:
                assert got == [(seq, i) for i, seq in publisher.acked], (stream, got)
            else:  # the failover took back a tail: announced with a new epoch, never silent
                assert shard == victim and len(publisher.epochs) == 2, (stream, shard, publisher.epochs)
            publisher.close()
        progress("every acknowledged message read back once, in order, on every shard")
    assert started_at(stack) == web_before, "a web container restarted"
