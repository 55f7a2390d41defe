"""The image's entry point: picks the Redis topology of docker-compose.yml, then runs the
command (`python deploy/topology.py CMD...`, exec'd so that signals reach it).

The `ha` profile adds three Sentinels; `docker compose --profile ha up` alone must put
every client on them, and the profile is not visible to the containers. The names in
RT_HA_SENTINELS are: when each resolves on the compose network, the Sentinels run, and
REDIS_SENTINELS is set to them. An explicit REDIS_SENTINELS (or REDIS_CLUSTER_NODES)
always wins. The Sentinels start with `redis`, before any app container (which waits for
`redis` to be healthy), so they are found when they belong to the stack.

deploy/healthcheck.py makes the same choice, since health checks skip the entry point.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import MutableMapping


def choose(env: MutableMapping[str, str] = os.environ) -> str:
    """Set REDIS_SENTINELS in `env` when the ha profile's Sentinels are there; say which
    topology the product will use."""
    if env.get("REDIS_SENTINELS") or env.get("REDIS_CLUSTER_NODES"):
        return "as configured"
    wanted = [s.strip() for s in env.get("RT_HA_SENTINELS", "").split(",") if s.strip()]
    if wanted and all(_resolves(hostport.rsplit(":", 1)[0]) for hostport in wanted):
        env["REDIS_SENTINELS"] = ",".join(wanted)
        return f"Sentinel ({env['REDIS_SENTINELS']}): the ha profile runs"
    return "one Redis (REDIS_URL)"


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
    os.execvp(sys.argv[1], sys.argv[1:])
