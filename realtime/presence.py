"""Presence: who is here, per user, at O(1) per change however big the room.

Each signed-in connection of a stream holds a lease in a Redis sorted set, scored by its
expiry, and counts for its user in a hash (user -> live connections on every process),
both changed by one Lua script per arrival or departure. A user's first connection is a
join, their last one a leave; extra tabs change only their count. Each process renews the
leases of its own connections every check in one pipeline; a process that dies stops
renewing, and the next sweep, by any process, counts its leases out: no ghosts.

Joins and leaves are not sent one by one. Each process collects them per stream and
every `interval` seconds sends at most one `presence` frame per room with all of them,
each with the version the script gave it (processes flush independently: a client keeps
the newest version per user). Past `max_members` users a room sends no member changes at
all: occupancy figures (counts) stand in for the list. Member changes are announced for
`room:` streams only; the leases of other kinds count users for occupancy.

Typing signals go through the channel layer too; all these frames carry no seq: they are
at most once and not replayed (docs/protocol.md, "Presence").
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from . import envelope
from .deadline import redis_call
from .errors import Unavailable
from .names import StreamKeys, parse_stream, stream_keys
from .protocol import encode
from .scripts import ScriptPipeline, pipelined

PRESENCE_KINDS = frozenset({"room", "group", "dm"})
_LUA = Path(__file__).with_name("lua")


def member_of(user_id: str, name: str, conn_id: str) -> str:
    return f"{user_field(user_id, name)}\t{conn_id}"


def user_field(user_id: str, name: str) -> str:
    """The users hash's field of one user; a tab in a token's name would split it."""
    return f"{user_id}\t{name.replace(chr(9), ' ')}"


def user_of(field_or_member: str) -> dict[str, str]:
    user_id, name = field_or_member.split("\t")[:2]
    return {"id": user_id, "name": name}


def typing_frame(stream: str, user: dict[str, str]) -> str:
    return encode({"type": "typing", "stream": stream, "user": user})


def members_frame(stream: str, members: list[dict[str, Any]], total: int, version: int) -> str:
    return encode({"type": "presence", "stream": stream, "members": members, "total": total, "v": version})


@dataclass
class Changes:
    """One stream's joins and leaves since the last flush: the newest per user wins."""

    users: dict[str, tuple[str, dict[str, str], int]] = field(default_factory=dict)
    total: int = 0
    total_version: int = 0  # the version `total` was counted at

    def note(self, event: str, field_: str, version: int) -> None:
        held = self.users.get(field_)
        if held is None or held[2] < version:
            self.users[field_] = (event, user_of(field_), version)

    def count(self, total: int, version: int) -> None:
        """Keep the total of the newest change: concurrent scripts' answers resume in
        any order, and an older, smaller total would let a full room's joins out."""
        if version >= self.total_version:
            self.total, self.total_version = total, version

    def frame(self, stream: str) -> str:
        joined = [{**u, "v": v} for e, u, v in self.users.values() if e == "join"]
        left = [{**u, "v": v} for e, u, v in self.users.values() if e == "leave"]
        return encode({"type": "presence", "stream": stream, "joined": joined, "left": left, "total": self.total})


class Presence:
    """One per hub: the leases of this process's connections, renewed together."""

    def __init__(
        self, redis: aioredis.Redis, layer: Any, *, prefix: str, buckets: int, ttl: float, max_members: int = 100
    ) -> None:
        self.redis = redis
        self.layer = layer
        self.prefix = prefix
        self.buckets = buckets
        self.ttl = ttl
        self.max_members = max_members
        self.local: dict[str, set[str]] = {}  # stream -> lease members held by this process
        self.pending: dict[str, Changes] = {}  # stream -> changes not sent yet
        self._join = redis.register_script((_LUA / "presence_join.lua").read_text())
        self._leave = redis.register_script((_LUA / "presence_leave.lua").read_text())
        self._sweep = redis.register_script((_LUA / "presence_sweep.lua").read_text())
        self._renew = redis.register_script((_LUA / "presence_renew.lua").read_text())

    def _keys(self, stream: str) -> StreamKeys:
        return stream_keys(self.prefix, stream, self.buckets)

    def _script_keys(self, stream: str) -> list[str]:
        keys = self._keys(stream)
        return [keys.presence, keys.present_users, keys.presence_version]

    def _expiry(self) -> int:
        return int((time.time() + self.ttl) * 1000)

    def _lifetime(self) -> int:
        return int(self.ttl * 4000)

    @staticmethod
    def new_connection_id() -> str:
        return uuid.uuid4().hex[:12]

    async def join(self, stream: str, user: dict[str, str], conn_id: str) -> None:
        """Lease this connection; a user's first one is noted as a join."""
        member = member_of(user["id"], user["name"], conn_id)
        self.local.setdefault(stream, set()).add(member)
        async with redis_call():
            version, total = await self._join(
                keys=self._script_keys(stream),
                args=[member, user_field(user["id"], user["name"]), self._expiry(), self._lifetime()],
            )
        if int(version):
            self._note(stream, "join", [user_field(user["id"], user["name"]), version], int(total))

    async def leave(self, stream: str, user: dict[str, str], conn_id: str) -> None:
        """Give up this connection's lease; a user's last one is noted as a leave."""
        member = member_of(user["id"], user["name"], conn_id)
        held = self.local.get(stream)
        if held is not None:
            held.discard(member)
            if not held:
                del self.local[stream]
        try:
            async with redis_call():
                result = await self._leave(keys=self._script_keys(stream), args=[member])
        except Unavailable:
            return  # the lease runs out and a sweep counts it out
        self._note(stream, "leave", result[1:], int(result[0]))

    def _note(self, stream: str, event: str, pairs: list[Any], total: int) -> None:
        if parse_stream(stream).kind not in PRESENCE_KINDS:
            return
        changes = self.pending.setdefault(stream, Changes())
        versions = [int(v) for v in pairs[1::2]]
        changes.count(total, max(versions, default=0))
        for i in range(0, len(pairs), 2):
            changes.note(event, str(pairs[i]), int(pairs[i + 1]))

    async def flush(self) -> None:
        """Send each room's changes since the last flush as one frame; a room past
        `max_members` gets none (its occupancy figures say how many are here)."""
        pending, self.pending = self.pending, {}
        for stream, changes in pending.items():
            if changes.users and changes.total <= self.max_members:
                await self.announce(stream, changes.frame(stream))

    async def members(self, stream: str) -> tuple[list[dict[str, Any]], int, int]:
        """Up to `max_members` users here now (each with its connections), how many there
        are in all, and the version of the list (changes at or below it are in it)."""
        keys = self._keys(stream)
        key = keys.present_users
        async with redis_call():
            version = int(await self.redis.get(keys.presence_version) or 0)
            total = int(await self.redis.hlen(key))
            if total <= self.max_members:
                counts: dict[Any, Any] = await self.redis.hgetall(key)
            else:
                _, counts = await self.redis.hscan(key, 0, count=self.max_members)  # type: ignore[assignment]
        members = [{**user_of(str(f)), "connections": int(n)} for f, n in counts.items() if int(n) > 0]
        members.sort(key=lambda m: (m["name"], m["id"]))
        return members[: self.max_members], total, version

    async def users(self, streams: list[str]) -> list[int]:
        """How many distinct signed-in users each stream has, in one round trip."""
        async with redis_call(), self.redis.pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.hlen(self._keys(stream).present_users)
            return [int(n) for n in await pipe.execute()]

    async def announce(self, stream: str, text: str) -> None:
        try:
            async with redis_call():
                await self.layer.group_send(parse_stream(stream).group, envelope.ephemeral(stream, text))
        except Exception:
            pass  # ephemeral: at most once

    async def renew_and_sweep(self, streams: list[str]) -> None:
        """Renew this process's leases and count out the expired ones of `streams`, in one
        pipelined round trip however many members there are."""
        held = [(stream, list(members)) for stream, members in self.local.items()]
        if not held and not streams:
            return
        expiry, lifetime, now = self._expiry(), self._lifetime(), int(time.time() * 1000)

        async def build(pipe: ScriptPipeline) -> None:
            for stream, members in held:
                await pipe.run(self._renew, self._script_keys(stream), [expiry, lifetime, *members])
            for stream in streams:
                await pipe.run(self._sweep, self._script_keys(stream), [now])

        async with redis_call():
            results = await pipelined(self.redis, build)
        for (stream, _), (total, joins, taken) in zip(held, results[: len(held)], strict=True):
            if joins:
                self._note(stream, "join", joins, int(total))
            await self._give_back(stream, [m for m in taken if m not in self.local.get(stream, ())])
        for stream, result in zip(streams, results[len(held) :], strict=True):
            if len(result) > 1:
                self._note(stream, "leave", result[1:], int(result[0]))

    async def _give_back(self, stream: str, members: list[str]) -> None:
        """Leases the renewal took again for connections that left while it was on its
        way: their leave ran first, so they are counted out once more."""
        if not members:
            return
        async with redis_call():
            result = await self._leave(keys=self._script_keys(stream), args=members)
        self._note(stream, "leave", result[1:], int(result[0]))


async def present_user_ids(stream: str) -> set[str]:
    """The ids of the signed-in users with a connection on `stream` now (all processes):
    for small streams (a `dm:` has two), as it reads the whole users hash."""
    from . import runtime

    backlog = runtime.current().backlog
    key = stream_keys(backlog.prefix, stream, backlog.buckets).present_users
    async with redis_call():
        counts = await backlog.redis.hgetall(key)
    return {user_of(str(f))["id"] for f, n in counts.items() if int(n) > 0}
