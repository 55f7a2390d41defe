"""Every Redis client of the project, built here from the settings with one policy: from
REDIS_URL, or with REDIS_SENTINELS from the primary that Sentinel names now (clients
follow a failover by themselves: a broken connection asks Sentinel again), or with
REDIS_CLUSTER_NODES a Redis Cluster client (redis-py's RedisCluster: it routes each
command to its slot's primary and follows MOVED; a pipeline is split per node).

- Replies are decoded to `str` (`decode_responses=True`): no caller meets bytes.
- Every command has a deadline (`RT_REDIS_TIMEOUT` unless the caller needs another), and
  connecting has at most a second of it, so a Redis that is down or hangs is an error
  quickly instead of a stuck caller.
- Idle connections are checked before use (`health_check_interval`).
- Retries: the async client of the request path retries a broken connection twice, with a
  short backoff, before callers answer `unavailable`. Sync clients never retry silently: a
  command that may have run before the connection broke surfaces as an error, so that the
  archiver re-queues what it holds and a counter (the sign-up throttle) is never counted twice.
"""

from __future__ import annotations

from typing import Any, cast

import redis
import redis.asyncio as aioredis
from django.conf import settings
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

HEALTH_CHECK_INTERVAL = 30
#: Connections the async client keeps at most per event loop.
MAX_CONNECTIONS = 256


def _options(timeout: float) -> dict[str, Any]:
    return {
        "decode_responses": True,
        "socket_timeout": timeout,
        "socket_connect_timeout": min(1.0, timeout),
        "health_check_interval": HEALTH_CHECK_INTERVAL,
    }


def _password_kwargs() -> dict[str, Any]:
    return {"password": settings.REDIS_PASSWORD} if settings.REDIS_PASSWORD else {}


def async_client() -> aioredis.Redis:
    """The client of one event loop (realtime.runtime): fails fast while Redis is down, so
    callers can answer `unavailable`. A RedisCluster in cluster mode: it has the commands,
    pipelines and scripts of a Redis client (typed as one here), each key on its slot."""
    timeout = float(settings.RT_REDIS_TIMEOUT)
    if settings.REDIS_CLUSTER_NODES:
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        from .cluster_layer import fix_cluster_node_disconnect

        fix_cluster_node_disconnect()

        cluster = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in settings.REDIS_CLUSTER_NODES],
            retry=AsyncRetry(ExponentialBackoff(cap=0.2, base=0.02), 3),
            max_connections=MAX_CONNECTIONS,
            **_password_kwargs(),
            **_options(timeout),
        )
        return cast(aioredis.Redis, cluster)
    if settings.REDIS_SENTINELS:
        from redis.asyncio.sentinel import Sentinel as AsyncSentinel

        sentinel = AsyncSentinel(settings.REDIS_SENTINELS, socket_timeout=min(1.0, timeout))  # type: ignore[no-untyped-call]
        client: aioredis.Redis = sentinel.master_for(
            settings.REDIS_SENTINEL_MASTER,
            retry=AsyncRetry(ExponentialBackoff(cap=0.2, base=0.02), 2),
            **_password_kwargs(),
            **_options(timeout),
        )
        return client
    # A blocking pool: a burst of concurrent commands waits for a connection instead of
    # failing with "Too many connections" (which callers would see as `unavailable`).
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.REDIS_URL,
        max_connections=MAX_CONNECTIONS,
        timeout=timeout,
        retry=AsyncRetry(ExponentialBackoff(cap=0.2, base=0.02), 2),
        **_options(timeout),
    )
    return aioredis.Redis.from_pool(pool)


def sync_client(timeout: float | None = None) -> redis.Redis:
    """A blocking client (the archiver, its status command, the metrics scrape, the sign-up
    throttle, tests); `timeout` in seconds, default `RT_REDIS_TIMEOUT`."""
    timeout = float(settings.RT_REDIS_TIMEOUT if timeout is None else timeout)
    if settings.REDIS_CLUSTER_NODES:
        from redis.cluster import ClusterNode, RedisCluster

        cluster = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in settings.REDIS_CLUSTER_NODES],  # type: ignore[no-untyped-call]
            retry=Retry(NoBackoff(), 0),
            **_password_kwargs(),
            **_options(timeout),
        )
        return cast(redis.Redis, cluster)
    if settings.REDIS_SENTINELS:
        from redis.sentinel import Sentinel

        sentinel = Sentinel(settings.REDIS_SENTINELS, socket_timeout=min(1.0, timeout))  # type: ignore[no-untyped-call]
        master: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            settings.REDIS_SENTINEL_MASTER, retry=Retry(NoBackoff(), 0), **_password_kwargs(), **_options(timeout)
        )
        return master
    return redis.Redis.from_url(settings.REDIS_URL, retry=Retry(NoBackoff(), 0), **_options(timeout))


def is_cluster(client: object) -> bool:
    from redis.asyncio.cluster import RedisCluster as AsyncCluster
    from redis.cluster import RedisCluster

    return isinstance(client, AsyncCluster | RedisCluster)


async def primary_address(client: aioredis.Redis) -> str:
    """host:port of the Redis `client` writes to now (Sentinel's current primary); in a
    cluster, every primary's, comma-separated."""
    if is_cluster(client):
        return ",".join(sorted(node.name for node in client.get_primaries()))  # type: ignore[attr-defined]
    pool = client.connection_pool
    ask = getattr(pool, "get_master_address", None)
    if ask is not None:
        host, port = await ask()
    else:
        host, port = pool.connection_kwargs.get("host"), pool.connection_kwargs.get("port")
    return f"{host}:{port}"
