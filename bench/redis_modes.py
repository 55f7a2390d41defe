"""What each durability setting costs: publish-to-ack latency of the product on a Redis
primary with one replica watched by Sentinel, with `appendfsync everysec` or `always`,
and with or without RT_REDIS_WAIT_REPLICAS=1.

    python -m bench.redis_modes [--count 400]

One uvicorn server, one publisher over WebSocket awaiting each ack (sequential: latency,
not throughput). Prints a Markdown table; the README quotes it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jwt
import websockets

from config.embedded_redis import free_port
from config.serve import server_command
from tests.health import wait_until_healthy
from tests.sentinel_set import SentinelSet

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET = "bench-" + os.urandom(24).hex()


async def latencies(port: int, count: int) -> list[float]:
    token = jwt.encode({"exp": int(time.time()) + 600, "sub": "bench", "pubs": ["live:*"]}, SECRET, algorithm="HS256")
    out = []
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/?token={token}") as ws:
        for i in range(count):
            started = time.perf_counter()
            await ws.send(json.dumps({"type": "publish", "stream": "live:modes", "data": {"i": i}, "id": f"m{i}"}))
            reply = json.loads(await ws.recv())
            assert reply["type"] == "ack", reply
            out.append((time.perf_counter() - started) * 1000)
    return out


def measure(fsync: str, wait: int, count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        ha = SentinelSet(Path(tmp) / "ha", replicas=1, appendfsync=fsync)
        ha.start()
        port = free_port()
        env = dict(
            os.environ, REDIS_SENTINELS=ha.sentinels_env, REDIS_URL="", RT_DATA_DIR=tmp, RT_TOKEN_SECRET=SECRET,
            DJANGO_SECRET_KEY=os.urandom(32).hex(), RT_REDIS_WAIT_REPLICAS=str(wait), LOG_LEVEL="WARNING",
            DJANGO_SETTINGS_MODULE="config.settings",
        )
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=BASE_DIR, env=env, check=True)
        server = subprocess.Popen(server_command("uvicorn", "127.0.0.1", port, env), cwd=BASE_DIR, env=env)
        try:
            wait_until_healthy(server, f"http://127.0.0.1:{port}", 30, "uvicorn")
            values = asyncio.run(latencies(port, count))
        finally:
            server.terminate()
            server.wait(20)
            ha.stop()
    values.sort()
    return {"median": statistics.median(values), "p99": values[int(len(values) * 0.99) - 1]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=400)
    count = parser.parse_args().count
    print("| appendfsync | RT_REDIS_WAIT_REPLICAS | promise | publish-to-ack median | p99 |")
    print("| --- | --- | --- | --- | --- |")
    promises = {
        ("everysec", 0): "a failover or host crash can take back the last second; detected, `recovered: false`",
        ("everysec", 1): "acknowledged means on the replica too: a failover loses nothing acknowledged",
        ("always", 0): "a restart of the primary loses nothing; a failover can take back the tail (detected)",
        ("always", 1): "both: nothing acknowledged is lost to a restart or a failover",
    }
    for fsync in ("everysec", "always"):
        for wait in (0, 1):
            figures = measure(fsync, wait, count)
            print(f"| {fsync} | {wait} | {promises[(fsync, wait)]} | {figures['median']:.2f} ms | {figures['p99']:.2f} ms |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
