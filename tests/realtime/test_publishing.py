"""publish() and message_tail(): data that is not JSON is a BadRequest, and nothing is stored."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from realtime.errors import BadRequest
from realtime.publishing import SERVER, apublish, message_tail


@pytest.mark.parametrize("data", [object(), {"when": object()}, {(1, 2): "tuple key"}])
def test_message_tail_refuses_data_that_is_not_json(data: Any) -> None:
    with pytest.raises(BadRequest) as refused:
        message_tail(data, SERVER, 0)
    assert refused.value.code == "bad_request" and "not JSON" in refused.value.message


async def test_apublish_of_data_that_is_not_json_stores_nothing() -> None:
    with pytest.raises(BadRequest):
        await apublish("room:not-json", {"when": object()})
    assert (await apublish("room:not-json", {"ok": 1})).seq == 1  # the refused one took no seq


def test_every_public_name_of_realtime_resolves_and_no_other_does() -> None:
    import realtime

    assert sorted(realtime.__all__) == sorted([*realtime._PUBLIC, *realtime._MODULES])
    for name in realtime.__all__:
        assert getattr(realtime, name) is not None
    with pytest.raises(AttributeError):
        realtime.not_a_public_name  # noqa: B018


async def test_a_control_message_sent_from_the_loop_is_kept_until_it_is_sent() -> None:
    """send_control() from a running loop keeps its task (a task nobody holds may be
    collected before it runs), and lets it go once the message is on its way."""
    import gc

    from realtime import publishing, runtime

    layer = runtime.current().layer
    channel = await layer.new_channel()
    await layer.group_add("rt-test-control", channel)
    publishing.send_control("rt-test-control", {"type": "rt.test", "n": 1})
    assert len(publishing._control_tasks) == 1
    gc.collect()  # held by the module, not only by the loop's weak reference
    assert (await layer.receive(channel))["n"] == 1
    for _ in range(50):
        if not publishing._control_tasks:
            break
        await asyncio.sleep(0.01)
    assert publishing._control_tasks == set()
    await layer.group_discard("rt-test-control", channel)
    await runtime.close_current()


async def test_apublish_many_stores_in_order_on_every_stream_and_publishes_each_once(redis_server: Any) -> None:
    """One pipeline for many streams: seqs follow the list per stream, the backlog holds
    exactly those messages, each is published once in the layer's form, and a repeated
    id (in the same list or a later one) is the same message, not stored again."""
    from channels.layers import get_channel_layer
    from django.conf import settings

    from realtime import envelope, runtime
    from realtime.layer_channel import script_channel_prefix
    from realtime.names import parse_stream
    from realtime.publishing import Outgoing, apublish_many
    from tests.realtime.test_layer_channel import raw_messages

    streams = ["live:many-a", "live:many-b", "room:many-c"]
    messages = [Outgoing(streams[n % 3], {"n": n}, f"id{n}") for n in range(30)]
    channel = f"{script_channel_prefix(settings.CHANNEL_LAYERS)}{parse_stream(streams[1]).group}"
    pubsub, reading = await raw_messages(redis_server.url, channel, 10)
    done = await apublish_many([*messages, ("live:many-a", {"n": 0}, "id0")])
    assert [(p.stream, p.seq, p.duplicate) for p in done[:6]] == [
        ("live:many-a", 1, False), ("live:many-b", 1, False), ("room:many-c", 1, False),
        ("live:many-a", 2, False), ("live:many-b", 2, False), ("room:many-c", 2, False),
    ]
    assert (done[30].seq, done[30].duplicate) == (1, True)
    again = await apublish_many([("live:many-b", {"n": 1}, "id1"), ("live:many-b", {"n": "new"})])
    assert [(p.seq, p.duplicate) for p in again] == [(1, True), (11, False)]
    backlog = runtime.current().backlog
    for stream in streams:
        stored = (await backlog.read(stream, 1, 10)).frames
        assert [json.loads(f)["data"]["n"] for f in stored] == [n for n in range(30) if n % 3 == streams.index(stream)]
    raw = await asyncio.wait_for(reading, 10)
    layer = get_channel_layer()
    got = [envelope.read(layer.deserialize(r)) for r in raw]
    assert [(m.stream, m.seq) for m in got] == [("live:many-b", seq) for seq in range(1, 11)]
    await pubsub.aclose()


@pytest.mark.parametrize(("bad", "why"), [
    (("live:ok", {"when": object()}), "message 2: data is not JSON"),
    (("no-kind-here", 1), "message 2: "),
    (("live:ok", "x" * 70_000), "message 2: message over"),
])
async def test_apublish_many_with_one_bad_message_stores_none_and_names_it(bad: tuple[str, Any], why: str) -> None:
    from realtime.errors import RealtimeError
    from realtime.publishing import apublish_many

    with pytest.raises(RealtimeError) as refused:
        await apublish_many([("live:ok", 1), ("live:ok", 2), bad, ("live:ok", 3)])
    assert refused.value.message.startswith(why), refused.value.message
    assert (await apublish("live:ok", 4)).seq == 1  # nothing of the list was stored


async def test_publish_many_from_sync_code_returns_every_seq() -> None:
    """The sync twin, as a job calls it (no running loop in its thread)."""
    from realtime.publishing import publish_many

    done = await asyncio.to_thread(publish_many, (("live:sync-many", {"n": n}) for n in range(1200)))
    assert [p.seq for p in done] == list(range(1, 1201))  # three pipelines of PIPELINE_SIZE at most
    with pytest.raises(RuntimeError, match="use `await apublish"):
        publish_many([("live:sync-many", 1)])


async def test_an_append_redis_refuses_is_unavailable_in_its_place_and_the_others_are_stored(
        redis_server: Any) -> None:
    """One stream's counter clobbered (a key of the wrong type): its append fails in Redis,
    the appends around it in the same pipeline are stored and reported."""
    import redis.asyncio as aioredis
    from django.conf import settings

    from realtime.errors import Unavailable
    from realtime.names import stream_keys
    from realtime.publishing import apublish_each, apublish_many

    client = aioredis.from_url(redis_server.url)
    await client.set(stream_keys(settings.RT_KEY_PREFIX, "live:clobbered", settings.RT_BUCKETS).meta, "not a hash")
    await client.aclose()
    done = await apublish_each([("live:each-a", 1), ("live:clobbered", 2), ("live:each-b", 3), ("live:each-a", 4)])
    assert [getattr(d, "seq", None) for d in done] == [1, None, 1, 2]
    assert isinstance(done[1], Unavailable) and "refused the append" in done[1].message
    with pytest.raises(Unavailable):
        await apublish_many([("live:each-b", 5), ("live:clobbered", 6)])
    assert (await apublish("live:each-b", 7)).seq == 3  # the one before the refused one was stored


async def test_a_message_that_is_not_a_stream_and_data_pair_is_named() -> None:
    from realtime.publishing import apublish_many

    with pytest.raises(TypeError, match=r"message 1 is not \(stream, data\) or \(stream, data, id\)"):
        await apublish_many([("live:pairs", 1), ("live:pairs",)])  # type: ignore[list-item]
    assert (await apublish("live:pairs", 2)).seq == 1  # nothing of the list was stored
