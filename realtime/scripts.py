"""Lua scripts run in a pipeline, on one Redis or on Redis Cluster.

redis-py's pipeline loads the scripts it is given before it runs them; its cluster
pipeline refuses `evalsha` altogether, since a node may not know the script (a promoted
replica, a node added later). Here a cluster pipeline sends EVALSHA as a plain command,
routed by the script's keys like any other, and a pipeline that meets NOSCRIPT loads its
scripts on every primary and runs once more. Callers pass a pipeline that reads, or
writes what may be written twice (a lease renewed twice is renewed).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from .redis_clients import is_cluster


class ScriptPipeline:
    """Queue commands and script runs on `pipe`; `scripts` holds what it ran."""

    def __init__(self, pipe: Any, cluster: bool) -> None:
        self.pipe = pipe
        self.cluster = cluster
        self.scripts: set[AsyncScript] = set()

    async def run(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]) -> None:
        self.scripts.add(script)
        if self.cluster:
            self.pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        else:
            await script(keys=keys, args=args, client=self.pipe)


async def pipelined(redis: aioredis.Redis, build: Callable[[ScriptPipeline], Awaitable[None]]) -> list[Any]:
    """Build a pipeline with `build` and run it in one round trip (one per node in a
    cluster); after NOSCRIPT, load the scripts on every primary and run it again."""
    cluster = is_cluster(redis)
    for attempt in range(2):
        async with redis.pipeline(transaction=False) as pipe:
            queued = ScriptPipeline(pipe, cluster)
            await build(queued)
            try:
                return await pipe.execute()
            except NoScriptError:
                if attempt or not cluster:
                    raise
        for script in queued.scripts:
            await redis.script_load(script.script)
    raise AssertionError("unreachable")
