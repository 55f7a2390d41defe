"""Occupancy: how many connections a stream has now on every server process, and how
many distinct signed-in users they belong to (docs/protocol.md 1.1, "Occupancy").

Cheap at 10,000 viewers: a viewer who comes or goes changes only this process's count in
memory. Each process writes its counts into the stream's occupancy hash (one field per
process, "connections:expiry") at most once a second for the streams whose count changed,
and all of them at every position check, which renews their lease; readers add up the
fresh fields and drop the stale ones, so a process that dies stops counting within the
lease. Distinct users come from presence's users hash, which every signed-in connection
counts in. Figures may lag by a second or two and are never negative.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import redis.asyncio as aioredis

from .deadline import redis_call
from .names import stream_keys
from .protocol import encode
from .scripts import ScriptPipeline, pipelined

_READ = (Path(__file__).with_name("lua") / "occupancy_read.lua").read_text()


def occupancy_frame(stream: str, connections: int, users: int) -> str:
    return encode({"type": "occupancy", "stream": stream, "connections": connections, "users": users})


class Occupancy:
    """One per hub: this process's share of every stream's figures."""

    def __init__(self, redis: aioredis.Redis, *, prefix: str, buckets: int, ttl: float) -> None:
        self.redis = redis
        self.prefix = prefix
        self.buckets = buckets
        self.ttl = ttl
        self.process = uuid.uuid4().hex[:12]
        self.written: dict[str, int] = {}  # stream -> the count last written for this process
        self._read = redis.register_script(_READ)

    def _key(self, stream: str) -> str:
        return stream_keys(self.prefix, stream, self.buckets).occupancy

    async def write(self, counts: dict[str, int], *, renew: bool = False) -> None:
        """Write this process's connection counts that changed (all of them with `renew`);
        a stream it no longer follows is written as gone."""
        gone = {stream: 0 for stream in self.written if stream not in counts}
        wanted = {s: n for s, n in {**counts, **gone}.items() if renew or self.written.get(s) != n}
        if not wanted:
            return
        expiry = int((time.time() + self.ttl) * 1000)
        async with redis_call(), self.redis.pipeline(transaction=False) as pipe:
            for stream, count in wanted.items():
                key = self._key(stream)
                if count:
                    pipe.hset(key, self.process, f"{count}:{expiry}")
                    pipe.pexpire(key, int(self.ttl * 4000))
                else:
                    pipe.hdel(key, self.process)
            await pipe.execute()
        for stream, count in wanted.items():
            if count:
                self.written[stream] = count
            else:
                self.written.pop(stream, None)

    async def figures(self, streams: list[str]) -> list[tuple[int, int]]:
        """(connections, users) of each stream, in one round trip."""
        if not streams:
            return []
        now = int(time.time() * 1000)

        async def build(pipe: ScriptPipeline) -> None:
            for stream in streams:
                keys = stream_keys(self.prefix, stream, self.buckets)
                await pipe.run(self._read, [keys.occupancy, keys.present_users], [now])

        async with redis_call():
            rows = await pipelined(self.redis, build)
        return [(max(0, int(c)), max(0, int(u))) for c, u in rows]
