"""A TCP proxy in front of Redis that can make pub/sub go silent while its TCP stays up:
what a paused proxy or a half-dead network path does to a subscription."""

from __future__ import annotations

import asyncio
import contextlib


class MutingProxy:
    """Forwards 127.0.0.1:port to Redis; `mute_subscribers()` drops what Redis sends on
    the connections that have subscribed so far, without closing them."""

    def __init__(self, redis_port: int) -> None:
        self.redis_port = redis_port
        self.server: asyncio.Server | None = None
        self.subscribers: list[dict[str, bool]] = []  # one flag set per subscribing connection
        self.connections: list[dict[str, bool]] = []
        self.subscribes = 0  # connections that sent SUBSCRIBE, ever

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await self.server.wait_closed()

    def mute_subscribers(self) -> None:
        for state in self.subscribers:
            state["muted"] = True

    def mute_all(self) -> None:
        """Nothing more reaches the clients of this proxy (a replica: its link stalls)."""
        for state in self.connections:
            state["muted"] = True

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        redis_r, redis_w = await asyncio.open_connection("127.0.0.1", self.redis_port)
        state = {"muted": False, "subscriber": False}
        self.connections.append(state)

        async def upstream() -> None:
            while data := await client_r.read(65536):
                if not state["subscriber"] and b"SUBSCRIBE" in data.upper():
                    state["subscriber"] = True
                    self.subscribes += 1
                    self.subscribers.append(state)
                redis_w.write(data)
                await redis_w.drain()

        async def downstream() -> None:
            while data := await redis_r.read(65536):
                if not state["muted"]:
                    client_w.write(data)
                    await client_w.drain()

        tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        with contextlib.suppress(Exception):
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for writer in (client_w, redis_w):
            with contextlib.suppress(Exception):
                writer.close()
