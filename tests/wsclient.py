"""A small WebSocket test client over real sockets (the `websockets` library)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets


class Client:
    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def connect(cls, url: str, **kwargs: Any) -> Client:
        return cls(await websockets.connect(url, max_size=None, **kwargs))

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))  # type: ignore[no-any-return]

    async def recv_type(self, type_: str, timeout: float = 5.0) -> dict[str, Any]:
        while True:
            frame = await self.recv(timeout)
            if frame["type"] == type_:
                return frame

    async def request(self, frame: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        await self.send(frame)
        return await self.recv(timeout)

    async def subscribe(self, stream: str, **extra: Any) -> dict[str, Any]:
        reply = await self.request({"type": "subscribe", "stream": stream, **extra})
        assert reply["type"] == "subscribed", reply
        return reply

    async def messages(self, stream: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        while len(got) < count:
            frame = await self.recv(timeout)
            if frame["type"] == "message" and frame["stream"] == stream:
                got.append(frame)
        return got

    async def close(self) -> None:
        await self.ws.close()
