"""Per event loop services: the Redis client, the backlog and the stream hub.

Redis connections belong to the loop that opened them, so each loop gets its own
`Runtime` (a server process has one; each test has its own, and nothing needs resetting).
"""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING

from channels.layers import get_channel_layer
from django.conf import settings

from .backlog import Backlog
from .layer_channel import script_channel
from .redis_clients import async_client

if TYPE_CHECKING:
    from .hub import StreamHub

_runtimes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Runtime] = weakref.WeakKeyDictionary()


class Runtime:
    def __init__(self) -> None:
        self.redis = async_client()
        channel = script_channel(settings.CHANNEL_LAYERS)
        self.backlog = Backlog(
            self.redis,
            prefix=settings.RT_KEY_PREFIX,
            buckets=settings.RT_BUCKETS,
            size=settings.RT_BACKLOG_SIZE,
            ttl=settings.RT_BACKLOG_TTL,
            idempotency_ttl=settings.RT_IDEMPOTENCY_TTL,
            wait_replicas=settings.RT_REDIS_WAIT_REPLICAS,
            wait_ms=settings.RT_REDIS_WAIT_MS,
            group_channel=channel[0] if channel else None,
            sharded=bool(channel and channel[1]),
        )
        self.layer = get_channel_layer()
        self._hub: StreamHub | None = None

    async def hub(self) -> StreamHub:
        """The loop's stream hub, started on first use."""
        if self._hub is None:
            from .hub import StreamHub

            self._hub = StreamHub(
                self.layer,
                self.backlog,
                check_interval=settings.RT_POSITION_CHECK,
                presence_ttl=settings.RT_PRESENCE_TTL,
                session_recheck=settings.RT_SESSION_RECHECK,
                presence_interval=settings.RT_PRESENCE_INTERVAL,
                presence_max_members=settings.RT_PRESENCE_MAX_MEMBERS,
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


def current_backlog() -> Backlog:
    """This event loop's backlog (public: apps read streams through it)."""
    return current().backlog


async def close_current() -> None:
    loop = asyncio.get_running_loop()
    runtime = _runtimes.pop(loop, None)
    if runtime is not None:
        await runtime.aclose()


def forget_all() -> None:
    """Drop every loop's runtime (tests change the key prefix between tests)."""
    _runtimes.clear()
