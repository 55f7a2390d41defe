"""The Redis list backlog of each stream (DESIGN.md "The hot path", steps 1 and 4).

Guarantees: `append` is atomic (one Lua script): a message is stored with the next seq
and the idempotency record and archive entry beside it, or nothing is. Seqs of an epoch
have no holes, so `read` fetches exactly the wanted range by list index, O(returned).
A stream whose meta record is lost (expired, or Redis restarted empty) starts a new epoch.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from .deadline import redis_call
from .names import stream_keys

_LUA = Path(__file__).with_name("lua")
_BIG = 1 << 53


@dataclass(frozen=True, slots=True)
class Appended:
    """The stored message: its position and the finished `message` frame text."""

    seq: int
    epoch: str
    duplicate: bool
    text: str


@dataclass(frozen=True, slots=True)
class Range:
    """Frames `first`, `first + 1`, ... of `epoch`, oldest first; `latest` is the counter."""

    epoch: str
    latest: int
    first: int
    frames: list[str]

    @property
    def last(self) -> int:
        return self.first + len(self.frames) - 1


def new_epoch() -> str:
    return secrets.token_urlsafe(6)


def frame_head(stream: str) -> str:
    return '{"type":"message","stream":"%s","seq":' % stream


def frame_text(head: str, seq: int, epoch: str, tail: str) -> str:
    """The `message` frame, built exactly as append.lua builds the stored copy."""
    return f'{head}{seq},"epoch":"{epoch}",{tail}'


class Backlog:
    """Per event loop: the scripts, bound to one async Redis client that decodes replies
    to str (runtime.make_redis: `decode_responses=True`)."""

    def __init__(
        self, redis: aioredis.Redis, *, prefix: str, buckets: int, size: int, ttl: int, idempotency_ttl: int
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.buckets = buckets
        self.size = size
        self.ttl = ttl
        self.idempotency_ttl = idempotency_ttl
        self._append = redis.register_script((_LUA / "append.lua").read_text())
        self._read = redis.register_script((_LUA / "read.lua").read_text())

    async def append(
        self, stream: str, tail: str, *, sender_key: str, client_id: str | None, archive: bool
    ) -> Appended:
        """Store one message; a repeated (sender, id) within the TTL returns the first seq."""
        keys = stream_keys(self.prefix, stream, self.buckets)
        idem = f"{keys.idem}{len(sender_key)}:{sender_key}:{client_id}" if client_id is not None else ""
        head = frame_head(stream)
        args: list[Any] = [new_epoch(), head, tail, self.size, self.ttl, self.idempotency_ttl, stream]
        async with redis_call():
            seq, epoch, dup = await self._append(
                keys=[keys.meta, keys.log, idem, keys.archive if archive else ""], args=args
            )
        return Appended(int(seq), epoch, bool(dup), frame_text(head, int(seq), epoch, tail))

    async def read(self, stream: str, first: int = 1, last: int = -1, most: int = 0) -> Range:
        """Frames with seq in [first, last] (last -1: the latest), at most `most` counted back
        from `last`; a trimmed start begins at the oldest frame kept (`Range.first` says)."""
        keys = stream_keys(self.prefix, stream, self.buckets)
        async with redis_call():
            result = await self._read(keys=[keys.meta, keys.log], args=[new_epoch(), self.ttl, first, last, most])
        return Range(result[0], int(result[1]), int(result[2]), result[3:])

    async def position(self, stream: str) -> tuple[str, int]:
        """(epoch, latest seq), creating the epoch when the stream has none."""
        r = await self.read(stream, first=_BIG)
        return r.epoch, r.latest

    async def positions(self, streams: list[str]) -> list[tuple[str | None, int]]:
        """(epoch or None, latest seq) of many streams in one pipelined round trip; creates nothing."""
        async with redis_call(), self.redis.pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.hmget(stream_keys(self.prefix, stream, self.buckets).meta, "epoch", "seq")
            rows = await pipe.execute()
        return [(e, int(s or 0)) for e, s in rows]
