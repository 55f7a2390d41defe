"""The table of wrong client frames (tests/realtime/test_protocol.py, `BAD_FRAMES`) in the
fast lane: the real consumer in process (channels' WebsocketCommunicator) against the real
test Redis. The same table runs over real sockets against a server in test_protocol.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from realtime import runtime
from realtime.consumers import StreamConsumer
from tests.realtime.test_protocol import BAD_FRAMES, PUBLISHER
from tests.tokens import mint

pytestmark = pytest.mark.django_db(transaction=True)


async def test_every_bad_frame_gets_its_error_and_the_connection_keeps_working(settings: Any) -> None:
    settings.RT_BAD_FRAME_LIMIT = 1000
    ws = WebsocketCommunicator(StreamConsumer.as_asgi(), "/ws/?token=" + mint(**PUBLISHER))
    assert (await ws.connect())[0]
    for frame, expected in BAD_FRAMES:
        await ws.send_to(text_data=json.dumps(frame))
        reply = json.loads(await ws.receive_from(5))
        if expected is None:
            assert reply["type"] in ("ack", "pong"), (frame, reply)
        else:
            assert reply["type"] == "error", (frame, reply)
            assert isinstance(reply["message"], str) and reply["message"], reply
            assert {k: reply[k] for k in ("code", "id", "stream") if k in reply} == expected, (frame, reply)
        await ws.send_to(text_data='{"type": "ping"}')
        assert json.loads(await ws.receive_from(5)) == {"type": "pong"}
    await ws.disconnect()
    await runtime.close_current()
