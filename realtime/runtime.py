"""Per event loop services: the Redis client, the backlog and the stream hub.

Redis connections belong to the loop that opened them, so each loop gets its own
`Runtime` (a server process has one; each test has its own, and nothing needs resetting).
"""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING

import redis.asyncio as aioredis
from channels.layers import get_channel_layer
from django.conf import settings
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from .backlog import Backlog

if TYPE_CHECKING:
    from .hub import StreamHub

_runtimes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Runtime] = weakref.WeakKeyDictionary()


def make_redis() -> aioredis.Redis:
    """An async client that fails fast while Redis is down, so callers can answer `unavailable`."""
    # A blocking pool: a burst of concurrent commands waits for a connection instead of
    # failing with "Too many connections" (which callers would see as `unavailable`).
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.REDIS_URL,
        max_connections=256,
        timeout=settings.RT_REDIS_TIMEOUT,
        decode_responses=True,
        socket_connect_timeout=min(1.0, settings.RT_REDIS_TIMEOUT),
        socket_timeout=settings.RT_REDIS_TIMEOUT,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 2),
        health_check_interval=30,
    )
    return aioredis.Redis.from_pool(pool)


class Runtime:
    def __init__(self) -> None:
        self.redis = make_redis()
        self.backlog = Backlog(
            self.redis,
            prefix=settings.RT_KEY_PREFIX,
            buckets=settings.RT_BUCKETS,
            size=settings.RT_BACKLOG_SIZE,
            ttl=settings.RT_BACKLOG_TTL,
            idempotency_ttl=settings.RT_IDEMPOTENCY_TTL,
        )
        self.layer = get_channel_layer()
        self._hub: StreamHub | None = None

    async def hub(self) -> StreamHub:
        """The loop's stream hub, started on first use."""
        if self._hub is None:
            from .hub import StreamHub

            self._hub = StreamHub(
                self.layer, self.backlog, check_interval=settings.RT_POSITION_CHECK, presence_ttl=settings.RT_PRESENCE_TTL
            )
        await self._hub.start()
        return self._hub

    async def aclose(self) -> None:
        if self._hub is not None:
            await self._hub.stop()
        await self.redis.aclose()


def current() -> Runtime:
    loop = asyncio.get_running_loop()
    runtime = _runtimes.get(loop)
    if runtime is None:
        runtime = _runtimes[loop] = Runtime()
    return runtime


async def close_current() -> None:
    loop = asyncio.get_running_loop()
    runtime = _runtimes.pop(loop, None)
    if runtime is not None:
        await runtime.aclose()


def forget_all() -> None:
    """Drop every loop's runtime (tests change the key prefix between tests)."""
    _runtimes.clear()
