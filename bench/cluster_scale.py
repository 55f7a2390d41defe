"""What Redis Cluster carries on this machine: publishes/s and deliveries/s with 1 and
with 3 shards, and what each publish costs Redis on each shard (docs/scaling.md).

    python -m bench.cluster_scale [--seconds 8] [--streams 48] [--subs 4]

For each shard count: a cluster of that many primaries (Debian's Redis 7, no replicas),
two uvicorn server processes on it (REDIS_CLUSTER_NODES), `--streams` `live:` streams
spread over the shards, and two phases of `--seconds` each:

- `publish`: backend publishers over WebSocket, many publishes in flight each, nobody
  subscribed. What a publish costs: Redis CPU per publish on each shard (INFO CPU and the
  acknowledged publishes whose slot that shard owns), server CPU per publish.
- `fan-out`: the same publishers, and `--subs` subscribers per stream on each server.
  Deliveries are counted, and checked for holes and repeats, by the subscribers; the
  server CPU beyond what the publishes cost, per delivery, is the delivery cost.

The load runs in this process (uvloop), beside everything else on the same cores: on a
small machine it and the servers are the limit, not Redis, which is why the per-publish
and per-delivery costs are what the projection in docs/scaling.md is built from.
Prints a Markdown table and writes bench/results/cluster.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import psutil
import redis
import uvloop
import websockets
from redis.crc import key_slot

from config.embedded_redis import free_port
from config.serve import server_command
from realtime.names import stream_keys
from tests.cluster_set import ClusterSet
from tests.health import wait_until_healthy
from tests.processes import stop_processes

BASE_DIR = Path(__file__).resolve().parent.parent
RESULTS = BASE_DIR / "bench" / "results" / "cluster.json"
SECRET = "bench-" + os.urandom(24).hex()
PREFIX = "rt"  # RT_KEY_PREFIX's default
BUCKETS = 1024  # RT_BUCKETS's cluster default (config/settings.py)
SERVERS = 2
PUBLISHERS_PER_SERVER = 2
IN_FLIGHT = 64  # publishes awaiting their ack, per publisher


@dataclass
class Counts:
    acked: dict[str, int] = field(default_factory=dict)
    delivered: int = 0
    holes: int = 0
    repeats: int = 0


def slot_of(stream: str) -> int:
    return key_slot(stream_keys(PREFIX, stream, BUCKETS).meta.encode())


def redis_cpu(port: int) -> float:
    """CPU seconds a Redis node has used (user + system, every thread)."""
    with redis.Redis(port=port) as node:
        info = node.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def tree_cpu(pid: int) -> float:
    process = psutil.Process(pid)
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        times = p.cpu_times()
        total += times.user + times.system
    return total


async def publisher(url: str, streams: list[str], name: str, until: float, counts: Counts) -> None:
    """Publish round robin over `streams` with IN_FLIGHT publishes awaiting their ack."""
    async with websockets.connect(url, max_queue=None) as ws:
        window = asyncio.Semaphore(IN_FLIGHT)
        sent: dict[str, str] = {}

        async def acks() -> None:
            async for raw in ws:
                frame = json.loads(raw)
                stream = sent.pop(frame.get("id", ""), None)
                if stream is None:
                    continue
                if frame["type"] == "ack":
                    counts.acked[stream] = counts.acked.get(stream, 0) + 1
                window.release()

        reader = asyncio.create_task(acks())
        n = 0
        while time.monotonic() < until:
            await window.acquire()
            stream, id_ = streams[n % len(streams)], f"{name}-{n}"
            sent[id_] = stream
            await ws.send(json.dumps({"type": "publish", "stream": stream, "data": {"n": n}, "id": id_}))
            n += 1
        deadline = time.monotonic() + 10
        while sent and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        reader.cancel()


async def subscriber(url: str, streams: list[str], ready: asyncio.Event, stop: asyncio.Event, counts: Counts) -> None:
    """Every stream's seqs must come one after the other: a jump is a hole, a step back a repeat."""
    async with websockets.connect(url, max_queue=None) as ws:
        last: dict[str, int] = {}
        for stream in streams:
            await ws.send(json.dumps({"type": "subscribe", "stream": stream}))
            while True:
                frame = json.loads(await ws.recv())
                if frame["type"] == "subscribed":
                    last[stream] = frame.get("seq") or 0
                    break
        ready.set()
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            frame = json.loads(raw)
            if frame["type"] != "message":
                continue
            seq, before = frame["seq"], last[frame["stream"]]
            if seq == before + 1:
                counts.delivered += 1
            elif seq > before + 1:
                counts.delivered += 1
                counts.holes += seq - before - 1
            else:
                counts.repeats += 1
            last[frame["stream"]] = max(seq, before)


async def phase(urls: list[str], streams: list[str], subs: int, seconds: float, counts: Counts) -> float:
    """Run publishers (and `subs` subscribers per stream per server); return the seconds
    publishing lasted."""
    token = jwt.encode({"exp": int(time.time()) + 3600, "sub": "bench", "pubs": ["live:*"]}, SECRET, "HS256")
    stop = asyncio.Event()
    readers = []
    for url in urls:
        for _ in range(subs):
            ready = asyncio.Event()
            readers.append(asyncio.create_task(subscriber(url, streams, ready, stop, counts)))
            await ready.wait()
    started = time.monotonic()
    until = started + seconds
    await asyncio.gather(*(
        publisher(f"{url}?token={token}", streams, f"p{i}-{n}-{started}", until, counts)
        for i, url in enumerate(urls) for n in range(PUBLISHERS_PER_SERVER)
    ))
    elapsed = time.monotonic() - started
    await asyncio.sleep(1.0)  # the last deliveries
    stop.set()
    await asyncio.gather(*readers)
    return elapsed


def run_shards(shards: int, seconds: float, stream_count: int, subs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        cluster = ClusterSet(Path(tmp) / "cluster", primaries=shards, replicas_per_primary=0)
        cluster.start()
        env = dict(
            os.environ, REDIS_CLUSTER_NODES=cluster.nodes_env, REDIS_URL="", RT_DATA_DIR=tmp, RT_TOKEN_SECRET=SECRET,
            DJANGO_SECRET_KEY=os.urandom(32).hex(), LOG_LEVEL="WARNING", DJANGO_SETTINGS_MODULE="config.settings",
            RT_PUBLISH_RATE="0", RT_BACKEND_PUBLISH_RATE="0",
        )
        servers: list[subprocess.Popen[bytes]] = []
        try:
            subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=BASE_DIR, env=env, check=True)
            ports = [free_port() for _ in range(SERVERS)]
            with open(Path(tmp) / "servers.log", "ab") as log:
                for port in ports:
                    servers.append(subprocess.Popen(server_command("uvicorn", "127.0.0.1", port, env), cwd=BASE_DIR,
                                                    env=env, stdout=log, stderr=subprocess.STDOUT))
            for server, port in zip(servers, ports, strict=True):
                wait_until_healthy(server, f"http://127.0.0.1:{port}", 60, "uvicorn")
            urls = [f"ws://127.0.0.1:{port}/ws/" for port in ports]
            streams = [f"live:scale{n}" for n in range(stream_count)]
            owner = {s: cluster.owner_port(slot_of(s)) for s in streams}
            primaries = cluster.primary_ports()
            out: dict[str, Any] = {"shards": shards, "streams": stream_count, "servers": SERVERS}
            uvloop.run(phase(urls, streams, 0, 1.0, Counts()))  # connections, scripts loaded: not measured
            for name, subscribers in (("publish", 0), ("fan-out", subs)):
                counts = Counts()
                redis_before = {p: redis_cpu(p) for p in primaries}
                server_before = sum(tree_cpu(s.pid) for s in servers)
                elapsed = uvloop.run(phase(urls, streams, subscribers, seconds, counts))
                redis_used = {p: redis_cpu(p) - redis_before[p] for p in primaries}
                server_used = sum(tree_cpu(s.pid) for s in servers) - server_before
                published = sum(counts.acked.values())
                per_shard = []
                for port in primaries:
                    mine = sum(n for s, n in counts.acked.items() if owner[s] == port)
                    per_shard.append({
                        "port": port, "publishes": mine, "cpu_s": round(redis_used[port], 3),
                        "cpu_pct": round(100 * redis_used[port] / elapsed, 1),
                        "us_per_publish": round(1e6 * redis_used[port] / mine, 1) if mine else None,
                    })
                out[name] = {
                    "seconds": round(elapsed, 2), "published": published, "delivered": counts.delivered,
                    "publishes_per_s": round(published / elapsed),
                    "deliveries_per_s": round(counts.delivered / elapsed), "holes": counts.holes,
                    "repeats": counts.repeats, "server_cpu_s": round(server_used, 2),
                    "server_us_per_publish": round(1e6 * server_used / published, 1) if published else None,
                    "redis_us_per_publish": round(1e6 * sum(redis_used.values()) / published, 1) if published else None,
                    "shards": per_shard,
                }
                print(f"  {shards} shard(s), {name}: {json.dumps(out[name])}", file=sys.stderr, flush=True)
            fan = out["fan-out"]
            delivered = fan["deliveries_per_s"] * fan["seconds"]
            if delivered and out["publish"]["server_us_per_publish"]:
                publish_share = out["publish"]["server_us_per_publish"] * fan["publishes_per_s"] * fan["seconds"] / 1e6
                out["server_us_per_delivery"] = round(1e6 * max(0.0, fan["server_cpu_s"] - publish_share) / delivered, 1)
            return out
        finally:
            stop_processes(servers)
            cluster.stop()


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| shards | phase | publishes/s | deliveries/s | holes / repeats | Redis CPU per publish, per shard | Redis busy, per shard | server CPU per publish |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for res in results:
        for name in ("publish", "fan-out"):
            p = res[name]
            costs = " / ".join(f"{s['us_per_publish']} µs" for s in p["shards"])
            busy = " / ".join(f"{s['cpu_pct']} %" for s in p["shards"])
            lines.append(
                f"| {res['shards']} | {name} | {p['publishes_per_s']:,} | {p['deliveries_per_s']:,} | "
                f"{p['holes']} / {p['repeats']} | {costs} | {busy} | {p['server_us_per_publish']} µs |"
            )
    deliveries = ", ".join(f"{r['shards']} shard(s): {r.get('server_us_per_delivery')} µs" for r in results)
    return "\n".join(lines) + f"\n\nServer CPU per delivery (fan-out beyond the publishes' own cost): {deliveries}.\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--streams", type=int, default=48)
    parser.add_argument("--subs", type=int, default=4, help="subscribers per stream on each server")
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the figures go, as JSON")
    args = parser.parse_args(argv)
    results = []
    for shards in args.shards:
        print(f"{shards} shard(s)...", file=sys.stderr, flush=True)
        results.append(run_shards(shards, args.seconds, args.streams, args.subs))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cpus": os.cpu_count(), "subs_per_stream_per_server": args.subs, "results": results}, indent=2))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
