"""A text frame's bytes on the wire, built once per message per process.

A server's WebSocket frames are not masked, so the bytes of one message (header and
payload) are the same for every socket that does not compress: the hub builds one
`shared_event` per message, and the server protocols (config/uvicorn_ws.py,
config/daphne_server.py) write `frame.wire()` to each transport as it is, instead of
encoding and framing the text once per socket. A socket that negotiated
permessage-deflate (off unless RT_WS_DEFLATE=1), or any server that does not know the
extra key, uses the event's `text` as ASGI says.
"""

from __future__ import annotations

from typing import Any

from websockets.frames import Frame, Opcode

from . import metrics

#: The key of a `websocket.send` event that carries its PreparedFrame (ASGI servers
#: ignore keys they do not know).
FRAME = "rt.frame"


class PreparedFrame:
    """One unmasked, uncompressed text frame; its bytes are made on first use (where no
    socket can take them, nobody pays for them) and then reused."""

    __slots__ = ("text", "_wire", "_shared")

    def __init__(self, text: str, shared: bool = False) -> None:
        self.text = text
        self._wire: bytes | None = None
        self._shared = shared

    def wire(self) -> bytes:
        wire = self._wire
        if wire is None:
            wire = self._wire = Frame(Opcode.TEXT, self.text.encode()).serialize(mask=False, extensions=[])
            if self._shared:
                metrics.FRAMES_BUILT.inc()
        return wire


def frame_event(text: str) -> dict[str, Any]:
    """The `websocket.send` event of one frame for one socket (a reply, a replayed message):
    its prepared bytes let the server coalesce it with the frames around it."""
    return {"type": "websocket.send", "text": text, FRAME: PreparedFrame(text)}


def shared_event(text: str) -> dict[str, Any]:
    """The `websocket.send` event one message goes to many sockets in; never changed once
    built."""
    return {"type": "websocket.send", "text": text, FRAME: PreparedFrame(text, shared=True)}
