"""Presence and typing for `room:` streams: ephemeral, never in the backlog.

Who is here is a Redis sorted set per stream, one entry per connection of a signed-in
user, scored by the expiry of its lease. Each process renews the leases of its own
connections every `ttl / 3` seconds in one pipeline; a process that dies stops renewing,
and the next sweep (any process) removes its entries and announces them as left: no
ghosts. Join, leave and typing events go through the channel layer like messages, but
carry no seq: they are at-most-once and are not replayed (see docs/protocol-extensions.md).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from .deadline import redis_call
from .errors import Unavailable
from .names import parse_stream, stream_keys
from .protocol import encode

PRESENCE_KINDS = frozenset({"room"})
_SWEEP = (Path(__file__).with_name("lua") / "presence_sweep.lua").read_text()


def member_of(user_id: str, name: str, conn_id: str) -> str:
    return f"{user_id}\t{name}\t{conn_id}"


def user_of(member: str) -> dict[str, str]:
    user_id, name, _ = member.split("\t", 2)
    return {"id": user_id, "name": name}


def event_frame(stream: str, event: str, user: dict[str, str]) -> str:
    return encode({"type": "presence", "stream": stream, "event": event, "user": user})


def typing_frame(stream: str, user: dict[str, str]) -> str:
    return encode({"type": "typing", "stream": stream, "user": user})


class Presence:
    """One per hub: the leases of this process's connections, renewed together."""

    def __init__(self, redis: aioredis.Redis, layer: Any, *, prefix: str, buckets: int, ttl: float) -> None:
        self.redis = redis
        self.layer = layer
        self.prefix = prefix
        self.buckets = buckets
        self.ttl = ttl
        self.local: dict[str, set[str]] = {}  # stream -> members held by this process
        self._sweep = redis.register_script(_SWEEP)

    def _key(self, stream: str) -> str:
        return stream_keys(self.prefix, stream, self.buckets).presence

    def _expiry(self) -> int:
        return int((time.time() + self.ttl) * 1000)

    @staticmethod
    def new_connection_id() -> str:
        return uuid.uuid4().hex[:12]

    async def join(self, stream: str, user: dict[str, str], conn_id: str) -> None:
        member = member_of(user["id"], user["name"], conn_id)
        self.local.setdefault(stream, set()).add(member)
        async with redis_call():
            await self.redis.zadd(self._key(stream), {member: self._expiry()})
        await self.announce(stream, event_frame(stream, "join", user))

    async def leave(self, stream: str, user: dict[str, str], conn_id: str) -> None:
        member = member_of(user["id"], user["name"], conn_id)
        held = self.local.get(stream)
        if held is not None:
            held.discard(member)
            if not held:
                del self.local[stream]
        try:
            async with redis_call():
                removed = await self.redis.zrem(self._key(stream), member)
        except Unavailable:
            return  # the lease runs out and a sweep announces the leave
        if removed:
            await self.announce(stream, event_frame(stream, "leave", user))

    async def members(self, stream: str) -> list[dict[str, Any]]:
        """Signed-in users here now, each with its number of connections."""
        async with redis_call():
            entries = await self.redis.zrangebyscore(self._key(stream), int(time.time() * 1000), "+inf")
        counts: dict[tuple[str, str], int] = {}
        for member in entries:
            user = user_of(str(member))
            counts[(user["id"], user["name"])] = counts.get((user["id"], user["name"]), 0) + 1
        return [{"id": i, "name": n, "connections": c} for (i, n), c in sorted(counts.items())]

    async def announce(self, stream: str, text: str) -> None:
        try:
            async with redis_call():
                await self.layer.group_send(parse_stream(stream).group, {"type": "rt.eph", "s": stream, "t": text})
        except Exception:
            pass  # ephemeral: at most once

    async def renew_and_sweep(self, streams: list[str]) -> None:
        """Renew this process's leases; remove and announce expired ones of `streams`."""
        if self.local:
            expiry = self._expiry()
            async with redis_call(), self.redis.pipeline(transaction=False) as pipe:
                for stream, members in self.local.items():
                    pipe.zadd(self._key(stream), dict.fromkeys(members, expiry))
                    pipe.pexpire(self._key(stream), int(self.ttl * 4000))
                await pipe.execute()
        swept = [stream for stream in streams if parse_stream(stream).kind in PRESENCE_KINDS]
        if not swept:
            return
        now = int(time.time() * 1000)
        async with redis_call(), self.redis.pipeline(transaction=False) as pipe:  # every sweep in one round trip
            for stream in swept:
                await self._sweep(keys=[self._key(stream)], args=[now], client=pipe)
            expired = await pipe.execute()
        for stream, members in zip(swept, expired, strict=True):
            for member in members:
                await self.announce(stream, event_frame(stream, "leave", user_of(member)))
