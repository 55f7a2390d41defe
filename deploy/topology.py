"""The image's entry point: picks the Redis topology of docker-compose.yml, then runs the
command (`python deploy/topology.py CMD...`, exec'd so that signals reach it).

The `ha` profile adds three Sentinels, the `cluster` profile a Redis Cluster of six
nodes; `docker compose --profile ha up` (or `--profile cluster`) alone must put every
client on them, and the profile is not visible to the containers. The names in
RT_HA_SENTINELS and RT_CLUSTER_NODES are: when each resolves on the compose network, that
profile runs, and REDIS_SENTINELS (or REDIS_CLUSTER_NODES) is set to them. An explicit
REDIS_SENTINELS or REDIS_CLUSTER_NODES always wins. The Sentinels and the cluster's nodes
start with `redis`, before any app container (which waits for `redis` to be healthy), so
they are found when they belong to the stack; the entry point then waits for the cluster
to be formed (the profile's `cluster-init` forms it once) before it runs the command.

deploy/healthcheck.py makes the same choice, since health checks skip the entry point.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import MutableMapping


def choose(env: MutableMapping[str, str] = os.environ) -> str:
    """Set REDIS_SENTINELS or REDIS_CLUSTER_NODES in `env` when the ha or the cluster
    profile runs; say which topology the product will use."""
    if env.get("REDIS_SENTINELS") or env.get("REDIS_CLUSTER_NODES"):
        return "as configured"
    sentinels = _running(env, "RT_HA_SENTINELS")
    # Any one node is enough to find the cluster (a stopped container's name no longer
    # resolves): with some down, the product must not fall back to the standalone Redis.
    cluster = _running(env, "RT_CLUSTER_NODES", every=False)
    if sentinels and cluster:
        raise SystemExit("[topology] the ha and the cluster profiles both run: start one of them")
    if sentinels:
        env["REDIS_SENTINELS"] = sentinels
        return f"Sentinel ({sentinels}): the ha profile runs"
    if cluster:
        env["REDIS_CLUSTER_NODES"] = cluster
        return f"Redis Cluster ({cluster}): the cluster profile runs"
    return "one Redis (REDIS_URL)"


def _running(env: MutableMapping[str, str], variable: str, every: bool = True) -> str:
    """The `host:port` list in `variable` when every host resolves, else "". With
    `every=False`, those of them that resolve (the profile runs when any one does)."""
    wanted = [s.strip() for s in env.get(variable, "").split(",") if s.strip()]
    found = [hostport for hostport in wanted if _resolves(hostport.rsplit(":", 1)[0])]
    if found and (len(found) == len(wanted) or not every):
        return ",".join(found)
    return ""


def wait_for_cluster(nodes: str, timeout: float = 180.0) -> None:
    """Until a node of `nodes` says `cluster_state:ok`: the cluster-init service forms the
    cluster after its nodes start, and the product must not start on half a cluster."""
    import redis

    password = os.environ.get("REDIS_PASSWORD") or None
    deadline = time.monotonic() + timeout
    said = 0.0
    while True:
        states = []
        for hostport in nodes.split(","):
            host, _, port = hostport.rpartition(":")
            try:
                with redis.Redis(host=host, port=int(port), password=password, socket_timeout=2,
                                 socket_connect_timeout=2) as node:
                    states.append(str(node.cluster("info").get("cluster_state")))
            except redis.AuthenticationError as exc:  # waiting will not mend it
                raise SystemExit(f"[topology] the Redis Cluster refused REDIS_PASSWORD: {exc}") from None
            except redis.RedisError as exc:
                states.append(exc.__class__.__name__)
        if "ok" in states:
            return
        now = time.monotonic()
        if not said or now - said >= 10:
            print(f"[topology] waiting for the Redis Cluster to be formed (states: {states})", file=sys.stderr, flush=True)
            said = now
        if now > deadline:
            raise SystemExit(f"[topology] the Redis Cluster was not formed within {timeout:g} s (states: {states})")
        time.sleep(1)


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, None)
    except OSError:
        return False
    return True


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(f"usage: {sys.argv[0]} COMMAND [ARG...]")
    print(f"[topology] Redis: {choose()}", file=sys.stderr, flush=True)
    if os.environ.get("REDIS_CLUSTER_NODES"):
        wait_for_cluster(os.environ["REDIS_CLUSTER_NODES"])
    os.execvp(sys.argv[1], sys.argv[1:])
