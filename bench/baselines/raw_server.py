"""Baseline (b): the raw Python ceiling for fan-out through Redis pub/sub.

A `websockets` server and redis-py's asyncio pub/sub, nothing else: per process one
Redis subscription per stream with local members, and `websockets.broadcast()` of the
text Redis delivers to every local member (broadcast skips a socket whose write buffer
is full instead of queueing for it). Publishing is one Lua call that takes the stream's
next seq and PUBLISHes the finished frame. It speaks the product's subscribe/publish/ack
frames, without auth, backlog or recovery.

    python -m bench.baselines.raw_server --port 8001 --redis redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import asyncio
import json

import redis.asyncio as aioredis
import uvloop
import websockets
from websockets.asyncio.server import ServerConnection, serve


def dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


PUBLISH = """
local n = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], ARGV[2] .. n .. ARGV[3])
return n
"""


class Rooms:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.members: dict[str, set[ServerConnection]] = {}
        self.pubsub = client.pubsub(ignore_subscribe_messages=True)
        self.publish_script = client.register_script(PUBLISH)
        self.reader: asyncio.Task[None] | None = None

    def channel(self, stream: str) -> str:
        return f"{self.prefix}:chan:{stream}"

    async def join(self, stream: str, ws: ServerConnection) -> int:
        members = self.members.setdefault(stream, set())
        if not members:
            await self.pubsub.subscribe(self.channel(stream))
            if self.reader is None:
                self.reader = asyncio.create_task(self.read())
        members.add(ws)
        return int(await self.client.get(f"{self.prefix}:seq:{stream}") or 0)

    async def leave(self, stream: str, ws: ServerConnection) -> None:
        members = self.members.get(stream)
        if members is None:
            return
        members.discard(ws)
        if not members:
            del self.members[stream]
            await self.pubsub.unsubscribe(self.channel(stream))

    async def read(self) -> None:
        offset = len(self.prefix) + 6
        while True:
            message = await self.pubsub.get_message(timeout=None)
            if message is None or message["type"] != "message":
                continue
            members = self.members.get(message["channel"][offset:])
            if members:
                websockets.broadcast(members, message["data"])

    async def publish(self, stream: str, data: object) -> int:
        head = '{"type":"message","stream":%s,"seq":' % json.dumps(stream)
        tail = ',"data":%s}' % json.dumps(data, separators=(",", ":"))
        return int(await self.publish_script(keys=[f"{self.prefix}:seq:{stream}"], args=[self.channel(stream), head, tail]))


async def handler(ws: ServerConnection, rooms: Rooms) -> None:
    joined: set[str] = set()
    try:
        async for text in ws:
            frame = json.loads(text)
            kind = frame.get("type")
            stream = frame.get("stream")
            if kind == "subscribe":
                seq = await rooms.join(stream, ws)
                joined.add(stream)
                await ws.send(dumps({"type": "subscribed", "stream": stream, "epoch": "raw", "seq": seq, "recovered": True}))
            elif kind == "unsubscribe":
                await rooms.leave(stream, ws)
                joined.discard(stream)
                await ws.send(dumps({"type": "unsubscribed", "stream": stream}))
            elif kind == "publish":
                seq = await rooms.publish(stream, frame.get("data"))
                await ws.send(dumps({"type": "ack", "id": frame.get("id"), "stream": stream, "seq": seq, "epoch": "raw"}))
            elif kind == "ping":
                await ws.send('{"type":"pong"}')
    except websockets.ConnectionClosed:
        pass
    finally:
        for stream in joined:
            await rooms.leave(stream, ws)


async def main(port: int, redis_url: str, prefix: str) -> None:
    pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=32, decode_responses=True)
    client = aioredis.Redis(connection_pool=pool)
    rooms = Rooms(client, prefix)
    async with serve(lambda ws: handler(ws, rooms), "127.0.0.1", port, compression=None, max_size=1024 * 1024):
        await asyncio.Future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--prefix", default="rawbench")
    args = parser.parse_args()
    uvloop.run(main(args.port, args.redis, args.prefix))
