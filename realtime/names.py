"""Stream names: validation, channel-layer group names and Redis keys (docs/protocol.md "Streams").

A name is `KIND:NAME`. Every Redis key of a stream carries its bucket's hash tag
(`{prefix:7}`, docs/architecture.md "Redis keys") so that one Lua script only touches keys of one
Redis Cluster slot. The bucket count must never change once data exists.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from functools import lru_cache

from .errors import BadRequest

KINDS = ("room", "live", "user", "staff", "group", "dm")
#: Kinds whose messages people write to each other: edits, deletions and mentions apply.
CHAT_KINDS = frozenset({"room", "group", "dm"})
#: The NAME part of a stream name (docs/protocol.md "Streams"); URL routes and models reuse it.
NAME_PATTERN = r"[A-Za-z0-9_.-]{1,64}"
#: A `room:`, `group:` or `dm:` stream: the kinds people chat on (read positions, moderation).
CHAT_STREAM_PATTERN = r"^(?:(?:room|group):%s|dm:[A-Za-z0-9_-]{1,31}\.[A-Za-z0-9_-]{1,32})$" % NAME_PATTERN
_NAME_RE = re.compile(NAME_PATTERN)


@dataclass(frozen=True, slots=True)
class StreamName:
    """A validated stream name, split into its kind and its name."""

    kind: str
    name: str

    @property
    def full(self) -> str:
        return f"{self.kind}:{self.name}"

    @property
    def group(self) -> str:
        """The channel-layer group: the layer accepts only `[A-Za-z0-9_.-]`, so no colon."""
        return f"s.{self.kind}.{self.name}"


@lru_cache(maxsize=65536)
def parse_stream(value: object) -> StreamName:
    """Validate `value` as a stream name or raise BadRequest."""
    if not isinstance(value, str):
        raise BadRequest("stream must be a string like 'room:lobby'")
    kind, sep, name = value.partition(":")
    if not sep or kind not in KINDS:
        raise BadRequest(f"stream kind must be one of {', '.join(KINDS)}: {value[:80]!r}")
    if not _NAME_RE.fullmatch(name):
        raise BadRequest(f"stream name must match {NAME_PATTERN}: {value[:80]!r}")
    if kind == "dm" and dm_pair(name) is None:
        raise BadRequest(f"a dm stream is dm:A.B, two different user ids in ascending order: {value[:80]!r}")
    return StreamName(kind, name)


def dm_pair(name: str) -> tuple[str, str] | None:
    """The two user ids of a `dm:` name, or None: exactly one dot, two different ids, the
    smaller first (string order), so that each conversation has one name."""
    a, sep, b = name.partition(".")
    if not sep or not a or not b or "." in b or not a < b:
        return None
    return a, b


def dm_stream(user_a: str, user_b: str) -> str:
    """The `dm:` stream of two users; BadRequest for one user, or ids with a dot."""
    low, high = sorted((str(user_a), str(user_b)))
    return parse_stream(f"dm:{low}.{high}").full


def bucket_of(stream: str, buckets: int) -> int:
    """The stream's bucket: stable across processes and Python versions (CRC-32)."""
    return zlib.crc32(stream.encode()) % buckets


@dataclass(frozen=True, slots=True)
class StreamKeys:
    """The Redis keys of one stream, all sharing the bucket's hash tag."""

    meta: str  # hash: epoch, seq (the counter)
    log: str  # list: encoded `message` frames, newest first, capped
    idem: str  # prefix of the idempotency keys: idem + sender + ":" + id
    archive: str  # the bucket's archive queue
    presence: str  # sorted set: leases of signed-in connections, scored by expiry
    present_users: str  # hash: "user id \t name" -> that user's live connections
    presence_version: str  # counter of membership changes
    occupancy: str  # hash: process id -> "connections:expiry ms" of that process


def _tag(prefix: str, bucket: int) -> str:
    """The hash tag every key of a bucket starts with: one Redis Cluster slot per bucket."""
    return "{%s:%d}" % (prefix, bucket)


def stream_keys(prefix: str, stream: str, buckets: int) -> StreamKeys:
    bucket = bucket_of(stream, buckets)
    tag = _tag(prefix, bucket)
    return StreamKeys(
        meta=f"{tag}:meta:{stream}",
        log=f"{tag}:log:{stream}",
        idem=f"{tag}:idem:{stream}:",
        archive=archive_queue(prefix, bucket),
        presence=f"{tag}:presence:{stream}",
        present_users=f"{tag}:present:{stream}",
        presence_version=f"{tag}:pver:{stream}",
        occupancy=f"{tag}:occ:{stream}",
    )


def archive_queue(prefix: str, bucket: int) -> str:
    return f"{_tag(prefix, bucket)}:archive"


def group_hash_tag(group: str) -> str | None:
    """The hash tag of a stream's layer group in Redis Cluster (realtime/cluster_layer.py):
    the tag of the stream's keys, so that append.lua can publish on the group's channel in
    the same script. Other groups (the control group) hash by their whole name."""
    from django.conf import settings

    marker, _, rest = group.partition(".")
    kind, sep, name = rest.partition(".")
    if marker != "s" or not sep or kind not in KINDS:
        return None
    stream = f"{kind}:{name}"
    return f"{settings.RT_KEY_PREFIX}:{bucket_of(stream, settings.RT_BUCKETS)}"
