"""The WebSocket route of last resort: a handshake to a path with no route is refused.

channels' URLRouter raises ValueError for such a path, which each server logs as an
exception with a traceback (and uvicorn answers 500). A close before accepting is the
ASGI way to refuse: both servers answer the handshake with 403.
"""

from __future__ import annotations

from typing import Any


async def refuse_websocket(scope: dict[str, Any], receive: Any, send: Any) -> None:
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close", "code": 1008})
