"""Where the memory of an idle WebSocket connection goes: the product's ASGI app under
uvicorn in this process with tracemalloc on, N idle connections opened by a child process
(raw sockets: a handshake and a subscribe each), and the allocations that stayed, per
connection, grouped by the line that made them.

    .venv/bin/python -m bench.conn_memory [--connections 2000] [--top 25] [--callers 20] [--stream live:idle]

Python allocations only (tracemalloc): the kernel's socket buffers and the allocator's
slack are in the RSS figures of `make bench`, not here.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import resource
import sys
import tempfile
import tracemalloc
from pathlib import Path

from config.embedded_redis import EmbeddedRedis, free_port

CLIENT = r"""
import base64, os, socket, sys, json, struct
port, count, stream = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
socks = []
def frame(text):
    data = text.encode(); mask = os.urandom(4)
    head = bytes([0x81, 0x80 | len(data)]) + mask
    return head + bytes(b ^ mask[i % 4] for i, b in enumerate(data))
for _ in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /ws/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    reply = b""
    while b"\r\n\r\n" not in reply:
        reply += s.recv(4096)
    assert b" 101 " in reply.split(b"\r\n", 1)[0], reply[:200]
    if stream:
        s.sendall(frame(json.dumps({"type": "subscribe", "stream": stream})))
    socks.append(s)
print("open", flush=True)
sys.stdin.readline()
"""


async def measure(connections: int, top: int, stream: str, callers: int) -> None:
    import uvicorn

    from config.serve import server_command

    port = free_port()
    command = server_command("uvicorn", "127.0.0.1", port)
    ws_class = command[command.index("--ws") + 1]
    config = uvicorn.Config("config.asgi:application", host="127.0.0.1", port=port, ws=ws_class, lifespan="off",
                            ws_per_message_deflate=False, log_level="warning", loop="asyncio", http="httptools")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    # One connection first, so that what every process builds once is not counted.
    await run_clients(port, 1, stream, hold=False)
    await asyncio.sleep(0.5)
    tracemalloc.start(12)
    before = tracemalloc.take_snapshot()
    client = await run_clients(port, connections, stream, hold=True)
    await asyncio.sleep(2)
    after = tracemalloc.take_snapshot()
    report(before, after, connections, top, callers)
    assert client.stdin is not None
    client.stdin.write(b"\n")
    await client.wait()
    server.should_exit = True
    await serving


async def run_clients(port: int, count: int, stream: str, hold: bool) -> asyncio.subprocess.Process:
    client = await asyncio.create_subprocess_exec(sys.executable, "-c", CLIENT, str(port), str(count), stream,
                                                  stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert client.stdout is not None and client.stdin is not None
    line = await client.stdout.readline()
    assert line.strip() == b"open", line
    if not hold:
        client.stdin.write(b"\n")
        await client.wait()
    return client


def _where(frame: tracemalloc.Frame) -> str:
    name = frame.filename
    for cut in ("site-packages/", "lib/python3.11/"):
        if cut in name:
            name = name.split(cut)[1]
            break
    else:
        name = os.path.relpath(name, Path.cwd())
    return f"{name}:{frame.lineno}"


def report(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, connections: int, top: int, callers: int) -> None:
    skip = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap>")]
    after, before = after.filter_traces(skip), before.filter_traces(skip)
    stats = after.compare_to(before, "lineno")
    total = sum(s.size_diff for s in stats)
    print(f"{connections} idle connections: {total / connections / 1024:.2f} KiB of Python allocations per connection")
    print(f"{'bytes/conn':>10} {'objs/conn':>9}  where")
    for stat in stats[:top]:
        print(f"{stat.size_diff / connections:10.0f} {stat.count_diff / connections:9.2f}  {_where(stat.traceback[0])}")
    if callers:
        print(f"\nthe {callers} largest by call chain (innermost first):")
        for stat in after.compare_to(before, "traceback")[:callers]:
            chain = " <- ".join(_where(f) for f in list(stat.traceback)[::-1][:6])
            print(f"{stat.size_diff / connections:10.0f}  {chain}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--callers", type=int, default=0, help="also the N largest by call chain")
    parser.add_argument("--stream", default="live:idle", help="each connection subscribes to it ('' for none)")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the client process inherits it
    with tempfile.TemporaryDirectory() as work:
        redis = EmbeddedRedis(Path(work) / "redis")
        redis.start()
        try:
            os.environ.update(REDIS_URL=redis.url, RT_DATA_DIR=work, DJANGO_SETTINGS_MODULE="config.settings",
                              LOG_LEVEL="WARNING", RT_ARCHIVER="0")
            os.environ.setdefault("RT_TOKEN_SECRET", base64.b64encode(os.urandom(48)).decode())
            os.environ.setdefault("DJANGO_SECRET_KEY", base64.b64encode(os.urandom(48)).decode())
            asyncio.run(measure(args.connections, args.top, args.stream, args.callers))
        finally:
            redis.stop()


if __name__ == "__main__":
    main()
