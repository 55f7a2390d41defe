"""The shared frame bytes are the very bytes a WebSocket server library would send for that
text, for each of the three header lengths, and are built once however often used."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.streams import StreamReader

from realtime import metrics
from realtime.wire import FRAME, PreparedFrame, shared_event


def sent_by_a_server(text: str) -> bytes:
    """What websockets' own server protocol writes for `text` on an open connection."""
    server = ServerProtocol(state=State.OPEN)
    server.send_text(text.encode())
    return b"".join(server.data_to_send())


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 300_000])
def test_the_bytes_are_a_servers_unmasked_text_frame(size: int) -> None:
    text = ("é" + "x" * size)[:size]  # multi-byte UTF-8 too
    wire = PreparedFrame(text).wire()
    assert wire == sent_by_a_server(text)
    reader = StreamReader()
    reader.feed_data(wire)
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        frame = done.value
    assert (frame.opcode, frame.fin, frame.data.decode()) == (Opcode.TEXT, True, text)


def test_built_once_however_many_sockets_take_it() -> None:
    event = shared_event('{"type":"message"}')
    frame = event[FRAME]
    before = metrics.FRAMES_BUILT._value.get()
    first = frame.wire()
    assert all(frame.wire() is first for _ in range(100))
    assert metrics.FRAMES_BUILT._value.get() - before == 1
    assert event["type"] == "websocket.send" and event["text"] == frame.text  # servers that know no FRAME
