"""The hub's rules, each with a fast test: in process, the real consumer (channels'
WebsocketCommunicator) and the real hub against the real test Redis, with the races
made to happen on purpose: a publish landing during a subscriber's catch-up, a lost
pub/sub message, publishes landing while a hole is filled, a hole that the backlog can no longer fill, a new epoch, a ghost lease."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings

from realtime import runtime
from realtime.consumers import StreamConsumer
from realtime.names import stream_keys
from realtime.presence import Presence
from realtime.publishing import apublish, message_tail
from realtime.sender import SERVER
from tests.tokens import mint

app = StreamConsumer.as_asgi()


async def connect(**claims: Any) -> WebsocketCommunicator:
    ws = WebsocketCommunicator(app, "/ws/" + (f"?token={mint(**claims)}" if claims else ""))
    assert (await ws.connect())[0]
    return ws


async def frames(ws: WebsocketCommunicator, stream: str, until_seq: int, timeout: float = 5) -> list[dict[str, Any]]:
    """`subscribed` and `message` frames of `stream` up to the message with `until_seq`."""
    got: list[dict[str, Any]] = []
    while True:
        frame = json.loads(await ws.receive_from(timeout))
        if frame.get("stream") != stream or frame["type"] not in ("subscribed", "message"):
            continue
        got.append(frame)
        if frame["type"] == "message" and frame["seq"] >= until_seq:
            return got


async def lost(stream: str, count: int) -> None:
    """Store `count` messages whose pub/sub delivery is lost: appended, never fanned out."""
    backlog = runtime.current().backlog
    for _ in range(count):
        await backlog.append(stream, message_tail({"lost": True}, SERVER, 1), sender_key="k", client_id=None, archive=False)


@pytest.fixture(autouse=True)
async def close_runtime() -> Any:
    yield
    await runtime.close_current()


async def test_a_publish_landing_during_a_subscribers_catch_up_is_delivered_once_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = "live:race"
    for n in range(1, 6):
        await apublish(stream, n)
    epoch, _ = await runtime.current().backlog.position(stream)
    backlog = runtime.current().backlog
    real_read = backlog.read
    landed: list[int] = []

    async def read_then_publish(*args: Any, **kwargs: Any) -> Any:
        got = await real_read(*args, **kwargs)
        if not landed:  # the subscriber's own backlog read is done; three land before it is live
            for n in range(6, 9):
                landed.append((await apublish(stream, n)).seq)
        return got

    monkeypatch.setattr(backlog, "read", read_then_publish)
    ws = await connect()
    await ws.send_to(text_data=json.dumps({"type": "subscribe", "stream": stream, "since": {"epoch": epoch, "seq": 0}}))
    got = await frames(ws, stream, 8)
    assert landed == [6, 7, 8]
    assert got[0]["type"] == "subscribed" and got[0]["recovered"] is True
    assert [f["seq"] for f in got[1:]] == list(range(1, 9))
    assert [f["data"] for f in got[1:]] == list(range(1, 9))
    await ws.disconnect()


async def test_a_lost_pubsub_message_is_filled_from_the_backlog_when_the_next_one_comes() -> None:
    stream = "live:lost"
    ws = await connect()
    await ws.send_to(text_data=json.dumps({"type": "subscribe", "stream": stream}))
    assert json.loads(await ws.receive_from())["type"] == "subscribed"
    await lost(stream, 2)
    await apublish(stream, "after")  # seq 3 reaches the hub, which reads 1 and 2 first
    got = await frames(ws, stream, 3)
    assert [f["seq"] for f in got] == [1, 2, 3]
    await ws.disconnect()


async def test_publishes_landing_while_the_hub_fills_a_hole_are_passed_on_once_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = "live:midfill"
    ws = await connect()
    await ws.send_to(text_data=json.dumps({"type": "subscribe", "stream": stream}))
    assert json.loads(await ws.receive_from())["type"] == "subscribed"
    backlog = runtime.current().backlog
    real_read = backlog.read
    landed: list[int] = []

    async def read_while_more_land(*args: Any, **kwargs: Any) -> Any:
        if not landed:  # the hub's read of the hole: two more publishes overtake it
            for n in (4, 5):
                landed.append((await apublish(stream, n)).seq)
        return await real_read(*args, **kwargs)

    await lost(stream, 2)
    monkeypatch.setattr(backlog, "read", read_while_more_land)
    await apublish(stream, 3)  # seq 3 shows the hole 1..2; 4 and 5 come while it is read
    got = await frames(ws, stream, 5)
    assert landed == [4, 5]
    assert [f["seq"] for f in got] == [1, 2, 3, 4, 5]
    await ws.disconnect()


async def test_a_lost_last_message_is_found_by_the_position_check() -> None:
    settings.RT_POSITION_CHECK = 0.2
    stream = "live:last"
    ws = await connect()
    await ws.send_to(text_data=json.dumps({"type": "subscribe", "stream": stream}))
    assert json.loads(await ws.receive_from())["type"] == "subscribed"
    await lost(stream, 1)  # nothing comes after it: only the check can see it
    got = await frames(ws, stream, 1, timeout=5)
    assert [f["seq"] for f in got] == [1]
    await ws.disconnect()


async def test_a_hole_the_backlog_no_longer_has_is_announced_then_delivery_goes_on(backlog_size: Any) -> None:
    backlog_size(3)
    stream = "live:trimmed"
    ws = await connect()
    await ws.send_to(text_data=json.dumps({"type": "subscribe", "stream": stream}))
    first = json.loads(await ws.receive_from())
    await lost(stream, 10)  # seqs 1..10; after seq 11 the backlog keeps 9..11
    await apublish(stream, "eleven")
    got = await frames(ws, stream, 11)
    assert got[0] == {"type": "subscribed", "stream": stream, "epoch": first["epoch"], "seq": 8, "recovered": False}
    assert [f["seq"] for f in got[1:]] == [9, 10, 11]
    await ws.disconnect()


async def test_a_new_epoch_is_announced_as_recovered_false() -> None:
    stream = "live:epoch"
    await apublish(stream, 1)
    ws = await connect()
    await ws.send_to(text_data=json.dumps({"type": "subscribe", "stream": stream}))
    first = json.loads(await ws.receive_from())
    keys = stream_keys(settings.RT_KEY_PREFIX, stream, settings.RT_BUCKETS)
    await runtime.current().redis.delete(keys.meta, keys.log)  # Redis lost the stream
    await apublish(stream, "fresh")
    got = await frames(ws, stream, 1)
    assert got[0]["type"] == "subscribed" and got[0]["recovered"] is False and got[0]["epoch"] != first["epoch"]
    assert got[-1]["data"] == "fresh" and got[-1]["epoch"] == got[0]["epoch"]
    await ws.disconnect()


async def test_a_ghost_lease_left_by_a_dead_process_is_swept_and_announced() -> None:
    stream = "room:ghosts"
    watcher = await connect(sub="w", name="watcher")
    await watcher.send_to(text_data=json.dumps({"type": "subscribe", "stream": stream}))
    assert json.loads(await watcher.receive_from())["type"] == "subscribed"
    hub = await runtime.current().hub()
    # Another process's presence, with a short lease: it joins someone, then dies.
    dead = Presence(hub.presence.redis, hub.layer, prefix=settings.RT_KEY_PREFIX, buckets=settings.RT_BUCKETS, ttl=0.2)
    await dead.join(stream, {"id": "g", "name": "ghost"}, "deadbeef0000")
    await dead.flush()
    time.sleep(0.3)  # its lease runs out
    await hub.check_positions()  # renews our leases and sweeps the stream's expired ones
    await hub.presence.flush()
    joined_seen = False
    while True:
        frame = json.loads(await watcher.receive_from(timeout=5))
        if frame["type"] == "presence" and any(u["id"] == "g" for u in frame.get("joined", [])):
            joined_seen = True
        if frame["type"] == "presence" and frame.get("left"):
            break
    assert joined_seen
    assert [{"id": u["id"], "name": u["name"]} for u in frame["left"]] == [{"id": "g", "name": "ghost"}]
    await watcher.send_to(text_data=json.dumps({"type": "presence", "stream": stream}))
    while (answer := json.loads(await watcher.receive_from()))["type"] != "presence" or "members" not in answer:
        pass
    assert answer["members"] == [{"id": "w", "name": "watcher", "connections": 1}] and answer["total"] == 1
    await watcher.disconnect()


async def lose_tail(stream: str, count: int) -> None:
    """What a failover to a replica that lagged (or a restart that lost the end of the
    append-only file) leaves: the last `count` messages and their seqs gone."""
    keys = stream_keys(settings.RT_KEY_PREFIX, stream, settings.RT_BUCKETS)
    redis = runtime.current().redis
    for _ in range(count):
        await redis.lpop(keys.log)
    await redis.hincrby(keys.meta, "seq", -count)


@pytest.mark.parametrize("then_publish", [False, True], ids=["counter-back", "seq-reused"])
async def test_a_lost_tail_moves_the_stream_to_a_new_epoch_and_says_so(then_publish: bool) -> None:
    stream = "live:failover"
    ws = await connect()
    await ws.send_to(text_data=json.dumps({"type": "subscribe", "stream": stream}))
    first = json.loads(await ws.receive_from())
    for n in range(1, 4):
        await apublish(stream, f"before {n}")
    assert [f["seq"] for f in await frames(ws, stream, 3)] == [1, 2, 3]
    await lose_tail(stream, 1)
    if then_publish:  # the new primary hands seq 3 to another message: epoch and seq alone match
        assert (await apublish(stream, "another three")).seq == 3
    hub = await runtime.current().hub()
    await hub.check_positions()
    told = json.loads(await ws.receive_from())
    assert told["type"] == "subscribed" and told["recovered"] is False and told["epoch"] != first["epoch"]
    assert told["seq"] == 0
    after = await apublish(stream, "after")
    assert after.epoch == told["epoch"] and after.seq == 1
    got = await frames(ws, stream, 1)
    assert [(f["seq"], f["data"]) for f in got] == [(1, "after")]
    await ws.disconnect()


async def test_a_stream_that_only_moved_on_keeps_its_epoch() -> None:
    stream = "live:steady"
    ws = await connect()
    await ws.send_to(text_data=json.dumps({"type": "subscribe", "stream": stream}))
    first = json.loads(await ws.receive_from())
    await apublish(stream, 1)
    await frames(ws, stream, 1)
    await lost(stream, 2)
    await (await runtime.current().hub()).check_positions()
    got = await frames(ws, stream, 3)
    assert [f["seq"] for f in got] == [2, 3] and all(f["epoch"] == first["epoch"] for f in got)
    await ws.disconnect()


async def test_a_subscription_gone_silent_with_its_tcp_up_is_found_and_repaired(redis_server: Any) -> None:
    from channels.layers import channel_layers

    from tests.muting_proxy import MutingProxy

    proxy = MutingProxy(redis_server.port)
    await proxy.start()
    settings.RT_POSITION_CHECK = 0.3
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [redis_server.url.replace(f":{redis_server.port}/", f":{proxy.port}/")], "prefix": settings.RT_KEY_PREFIX},
        }
    }
    channel_layers.backends.clear()
    runtime.forget_all()
    try:
        stream = "live:silent"
        ws = await connect()
        await ws.send_to(text_data=json.dumps({"type": "subscribe", "stream": stream}))
        assert json.loads(await ws.receive_from())["type"] == "subscribed"
        await apublish(stream, 1)
        assert [f["seq"] for f in await frames(ws, stream, 1)] == [1]
        assert proxy.subscribes == 1
        proxy.mute_subscribers()  # from now on nothing published reaches this process live
        for n in range(2, 5):
            await apublish(stream, n)
        got = await frames(ws, stream, 4)  # the position check fills what pub/sub lost ...
        deadline = time.monotonic() + 5
        while proxy.subscribes < 2:  # ... and the probe finds the silence and reconnects
            assert time.monotonic() < deadline, "the silent subscription was not repaired"
            await asyncio.sleep(0.05)
        for n in range(5, 8):
            await apublish(stream, n)
        got += await frames(ws, stream, 7)
        assert [f["seq"] for f in got] == list(range(2, 8))
        await ws.disconnect()
    finally:
        await runtime.close_current()
        await proxy.stop()


async def test_stopping_waits_a_bounded_time_for_a_task_that_ignores_its_cancel(caplog: pytest.LogCaptureFixture) -> None:
    """A hub task stuck on its cancel (a library's clean-up that never returns) does not
    hold the shutdown for ever: the hub says which one and where it waits, and goes on."""
    from realtime.hub import StreamHub

    release = asyncio.Event()

    async def stuck_in_cleanup() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await release.wait()  # the clean-up that does not come back
            raise

    hub = await runtime.current().hub()
    stuck = asyncio.get_running_loop().create_task(stuck_in_cleanup())
    hub._tasks.append(stuck)
    await asyncio.sleep(0)
    with caplog.at_level("WARNING", logger="realtime.hub"):
        await hub.stop(timeout=0.3)
    assert not stuck.done() and hub._tasks == []
    (record,) = [r for r in caplog.records if "did not stop" in r.getMessage()]
    assert "stuck_in_cleanup" in record.getMessage() and "release.wait()" in record.getMessage()
    release.set()
    await asyncio.wait([stuck])
    assert isinstance(hub, StreamHub)
