"""The append script publishes each new message where channels_redis's pub/sub layer reads
its group, in the layer's own form (realtime/layer_channel.py), in the same round trip as
the append: checked against the installed layer, with the real test Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis
from channels.layers import get_channel_layer
from django.conf import settings

from realtime import envelope, runtime
from realtime.layer_channel import PUBSUB_LAYER, script_channel_prefix
from realtime.names import parse_stream
from realtime.publishing import SERVER, apublish, message_tail


def layers(backend: str = PUBSUB_LAYER, **config: Any) -> dict[str, Any]:
    return {"default": {"BACKEND": backend, "CONFIG": config}}


def test_only_a_plain_pubsub_layer_on_one_redis_is_published_to_by_the_script() -> None:
    assert script_channel_prefix(layers(hosts=["redis://h"], prefix="rt")) == "rt__group__"
    assert script_channel_prefix(layers(hosts=["redis://h"])) == "asgi__group__"
    assert script_channel_prefix(layers(hosts=["redis://a", "redis://b"], prefix="rt")) is None  # sharded
    assert script_channel_prefix(layers(hosts=["redis://h"], symmetric_encryption_keys=["k"])) is None
    assert script_channel_prefix(layers(hosts=["redis://h"], serializer_format="json")) is None
    assert script_channel_prefix(layers("channels_redis.core.RedisChannelLayer", hosts=["redis://h"])) is None
    assert script_channel_prefix(layers("channels.layers.InMemoryChannelLayer")) is None
    assert script_channel_prefix({}) is None


async def test_the_channel_is_the_one_the_installed_layer_uses_for_the_group() -> None:
    layer = get_channel_layer()
    group = parse_stream("room:lobby").group
    assert script_channel_prefix(settings.CHANNEL_LAYERS) + group == layer._get_layer()._get_group_channel_name(group)


async def raw_messages(redis_url: str, channel: str, count: int) -> tuple[aioredis.client.PubSub, asyncio.Task[list[bytes]]]:
    client = aioredis.from_url(redis_url)
    pubsub = client.pubsub()
    await pubsub.subscribe(channel)

    async def read() -> list[bytes]:
        got: list[bytes] = []
        while len(got) < count:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
            if message is not None:
                got.append(message["data"])
        return got

    return pubsub, asyncio.create_task(read())


async def test_a_new_message_is_published_in_the_layers_form_and_a_repeat_is_not(redis_server: Any) -> None:
    name = parse_stream("live:scripted")
    channel = f"{script_channel_prefix(settings.CHANNEL_LAYERS)}{name.group}"
    pubsub, reading = await raw_messages(redis_server.url, channel, 2)
    first = await apublish(name.full, {"n": 1}, id="a")
    again = await apublish(name.full, {"n": 1}, id="a")  # stored once, so published once
    second = await apublish(name.full, {"n": 2})
    assert (again.seq, again.duplicate) == (first.seq, True)
    raw = await asyncio.wait_for(reading, 10)
    layer = get_channel_layer()
    backlog = runtime.current().backlog
    stored = (await backlog.read(name.full, first.seq, second.seq)).frames
    assert [layer.deserialize(r) for r in raw] == [
        envelope.message(name.full, p.epoch, p.seq, text) for p, text in zip((first, second), stored, strict=True)
    ]
    assert envelope.read(layer.deserialize(raw[0])) == envelope.Message(name.full, first.epoch, first.seq, stored[0])
    await pubsub.aclose()


async def test_while_waiting_for_replicas_the_script_does_not_publish(rt_settings: str) -> None:
    settings.RT_REDIS_WAIT_REPLICAS = 1
    try:
        runtime.forget_all()
        backlog = runtime.current().backlog
        assert backlog.group_channel is None
    finally:
        settings.RT_REDIS_WAIT_REPLICAS = 0
        runtime.forget_all()
    channel = runtime.current().backlog.group_channel
    assert channel is not None and channel("s.room.x") == f"{script_channel_prefix(settings.CHANNEL_LAYERS)}s.room.x"


@pytest.mark.parametrize("group", ["", None])
async def test_an_append_without_a_group_publishes_nothing(group: str | None) -> None:
    backlog = runtime.current().backlog
    stored = await backlog.append("live:quiet", message_tail(1, SERVER, 1), sender_key="k", client_id=None,
                                  archive=False, **({} if group is None else {"group": group}))
    assert not stored.published and stored.seq == 1
