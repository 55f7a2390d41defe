"""JSON nested too deep (docs/protocol.md 1.1 "Limits"): refused where it comes in, and a
message stored before the limit is served as an entry saying so, never as a 500. In
process, against the real test Redis and database, with the real archive worker."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import AsyncClient
from hypothesis import given
from hypothesis import strategies as st

from realtime import runtime
from realtime.archive import Archiver
from realtime.consumers import StreamConsumer
from realtime.errors import BadRequest
from realtime.limits import MAX_DEPTH, json_depth, object_depth, too_deep
from realtime.protocol import decode_client_frame
from realtime.publishing import Sender, apublish, message_tail
from realtime.redis_clients import sync_client
from tests.tokens import mint

pytestmark = pytest.mark.django_db(transaction=True)
def backend() -> dict[str, str]:
    return {"Authorization": "Bearer " + mint(pubs=["room:*", "live:*"])}


def nested(depth: int) -> Any:
    value: Any = 1
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='ab"\\[]{}'),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet='x"[{'), inner, max_size=3),
    max_leaves=30,
)


@given(json_values)
def test_the_scan_and_the_walk_agree_with_the_nesting_of_any_value(value: Any) -> None:
    text = msgspec.json.encode(value)
    assert json_depth(text) == object_depth(value, limit=10_000)
    assert too_deep(text, 2) == (object_depth(value) > 2)


def test_a_deeply_nested_frame_is_a_bad_request_not_a_recursion_error() -> None:
    text = '{"type":"ping","x":' + "[" * 1100 + "]" * 1100 + "}"
    with pytest.raises(BadRequest, match="nested too deep"):
        decode_client_frame(text)


def test_data_of_33_levels_is_refused_and_32_accepted() -> None:
    sender = Sender(key="s")
    message_tail(nested(MAX_DEPTH), sender, 0)
    with pytest.raises(BadRequest, match="32 levels"):
        message_tail(nested(MAX_DEPTH + 1), sender, 0)
    with pytest.raises(BadRequest, match="32 levels"):
        message_tail(msgspec.Raw(b"[" * 970 + b"]" * 970), sender, 0)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 970, 1500])
async def test_an_http_publish_nested_too_deep_is_400(depth: int) -> None:
    body = '{"data": ' + "[" * depth + "]" * depth + "}"
    got = await AsyncClient().post(
        "/api/streams/room:deep/messages", body, content_type="application/json", headers=backend()
    )
    assert got.status_code == 400, got.content
    assert got.json()["error"]["code"] == "bad_request"
    assert (await runtime.current().backlog.read("room:deep")).frames == []


async def test_a_websocket_publish_nested_too_deep_is_a_bad_request_and_the_socket_lives_on() -> None:
    ws = WebsocketCommunicator(StreamConsumer.as_asgi(), "/ws/?token=" + mint(sub="deep", pubs=["live:*"]))
    assert (await ws.connect())[0]
    for n, depth in enumerate([MAX_DEPTH + 1, 970]):
        raw = '{"type":"publish","stream":"live:deep","id":"d%d","data":%s}' % (n, "[" * depth + "]" * depth)
        await ws.send_to(text_data=raw)
        refused = json.loads(await ws.receive_from(5))
        assert refused["type"] == "error" and refused["code"] == "bad_request", refused
        assert "32 levels" in refused["message"], refused
        if depth == MAX_DEPTH + 1:  # at 970 even the decoder gives up, before it reads the id
            assert refused["id"] == "d0", refused
    await ws.send_to(text_data=json.dumps({"type": "publish", "stream": "live:deep", "id": "ok", "data": nested(MAX_DEPTH)}))
    ack = json.loads(await ws.receive_from(5))
    assert ack["type"] == "ack" and ack["id"] == "ok" and ack["seq"] == 1, ack  # nothing refused was stored
    await ws.disconnect()
    await runtime.close_current()


async def plant(stream: str, data_json: str) -> int:
    """Store a message the way one was stored before the limit existed: straight into the
    backlog, past message_tail's check."""
    tail = '"ts":1,"data":%s,"sender":{"id":"9","name":"old"}}' % data_json
    stored = await runtime.current().backlog.append(stream, tail, sender_key="u:9", client_id=None, archive=True)
    return stored.seq


async def test_a_stored_message_too_deep_is_served_as_an_entry_saying_so() -> None:
    stream = "room:poisoned"
    await apublish(stream, {"text": "before"})
    bad = await plant(stream, "[" * 970 + "]" * 970)
    await apublish(stream, {"text": "after"})
    for path in (f"/api/streams/{stream}/messages", f"/api/streams/{stream}/messages?before=4"):
        got = await AsyncClient().get(path)
        assert got.status_code == 200, got.content[:300]
        messages = {m["seq"]: m for m in got.json()["messages"]}
        assert sorted(messages) == [1, 2, 3]
        assert messages[bad]["data"] == {"unreadable": "data nested more than 32 levels deep"}
        assert messages[bad]["sender"] == {"id": "9", "name": "old"}
        assert messages[bad]["stream"] == stream and messages[bad]["ts"] == 1
        assert messages[3]["data"] == {"text": "after"}


async def test_an_archived_message_too_deep_is_served_as_an_entry_saying_so(backlog_size: Any) -> None:
    backlog_size(2)
    stream = "room:poisoned-archive"
    await apublish(stream, {"text": "first"})
    bad = await plant(stream, "[" * 970 + "]" * 970)
    for i in range(3):
        await apublish(stream, {"text": f"later {i}"})
    client = sync_client()
    try:
        archiver = Archiver(client, prefix=settings.RT_KEY_PREFIX, buckets=settings.RT_BUCKETS, batch_size=50)
        assert await sync_to_async(archiver.drain)() == 5
    finally:
        client.close()
    got = await AsyncClient().get(f"/api/streams/{stream}/messages?before=4")
    assert got.status_code == 200, got.content[:300]
    messages = {m["seq"]: m for m in got.json()["messages"]}
    assert sorted(messages) == [1, 2, 3]
    assert messages[bad]["data"] == {"unreadable": "data nested more than 32 levels deep"}
    assert messages[1]["data"] == {"text": "first"}
