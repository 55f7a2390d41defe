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

from collections.abc import Mapping
from typing import Any

PUBSUB_LAYER = "channels_redis.pubsub.RedisPubSubChannelLayer"
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
