"""Where append.lua publishes: the Redis pub/sub channel that channels_redis's
RedisPubSubChannelLayer reads for a group, and the form of the messages on it.

Publishing from inside the append script saves the separate `group_send` round trip per
publish and makes "stored and published" one step (the hubs' ordering still covers
races). It relies on two things of channels_redis 4.x, which
tests/realtime/test_layer_channel.py checks against the installed layer: a group's channel
is `prefix + "__group__" + group`, and a message is a msgpack map with no random prefix
and no encryption. The layer and the backlog use one Redis (config/settings.py builds both
from REDIS_URL or REDIS_SENTINELS). Any other layer configuration (another backend,
several hosts, encryption, another serializer) gets None, and messages go out through
`group_send` as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from django.utils.module_loading import import_string

PUBSUB_LAYER = "channels_redis.pubsub.RedisPubSubChannelLayer"
SHARDED_LAYER = "realtime.cluster_layer.ShardedChannelLayer"
_DEFAULT_PREFIX = "asgi"  # RedisPubSubLoopLayer's default


def script_channel_prefix(layers: Mapping[str, Any]) -> str | None:
    """What a group's name is appended to for its pub/sub channel, or None when the
    append script must not publish (the layer would not read what it sends)."""
    layer = layers.get("default", {})
    config = layer.get("CONFIG", {})
    plain = set(config) <= {"hosts", "prefix"} and len(config.get("hosts", ())) == 1
    if layer.get("BACKEND") != PUBSUB_LAYER or not plain:
        return None
    return f"{config.get('prefix', _DEFAULT_PREFIX)}__group__"


def _sharded_channel(prefix: str, tag: Callable[[str], str | None] | None, group: str) -> str:
    from .cluster_layer import group_channel_name

    return group_channel_name(prefix, group, tag(group) if tag else None)


def script_channel(layers: Mapping[str, Any]) -> tuple[Callable[[str], str], bool] | None:
    """The pub/sub channel of a group as the default layer names it, and whether it is a
    sharded one (SPUBLISH); None when the append script must not publish."""
    layer = layers.get("default", {})
    if layer.get("BACKEND") == SHARDED_LAYER:
        config = layer.get("CONFIG", {})
        tag = config.get("group_tag")
        tag_of = import_string(tag) if isinstance(tag, str) else tag
        return partial(_sharded_channel, config.get("prefix", _DEFAULT_PREFIX), tag_of), True
    prefix = script_channel_prefix(layers)
    if prefix is None:
        return None
    return prefix.__add__, False
