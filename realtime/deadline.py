"""Redis calls on the request path answer in bounded time (`RT_REDIS_TIMEOUT`).

A Redis that hangs (a stalled host, a full disk, SIGSTOP) would otherwise keep a publish
waiting for the socket timeout of every retry in turn. Each call here is cut off after
`RT_REDIS_TIMEOUT` seconds and answered `unavailable`; a cut-off `append` may still have
been stored, which is why a client retries with the same `id` (idempotent: same seq).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from django.conf import settings
from redis.exceptions import RedisError

from .errors import Unavailable

log = logging.getLogger("realtime.redis")


@asynccontextmanager
async def redis_call() -> AsyncIterator[None]:
    """Bound the block by `RT_REDIS_TIMEOUT`; a timeout or any Redis error is Unavailable."""
    timeout = settings.RT_REDIS_TIMEOUT
    try:
        async with asyncio.timeout(timeout):
            yield
    except TimeoutError:
        raise Unavailable(
            f"Redis did not answer within {timeout:g} s; a publish may have been stored: retry with the same id"
        ) from None
    except (RedisError, OSError) as exc:
        # The client is told only the class; what Redis said goes to the log, at INFO
        # since an outage makes one line per call.
        log.info("a Redis call failed: %s: %s", exc.__class__.__name__, exc)
        raise Unavailable.from_exc(exc) from exc
