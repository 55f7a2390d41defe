"""Redis fails over under Sentinel and the promise holds (docs/protocol.md 1.1, "Redis
topologies"): two server processes, publishers and subscribers over WebSocket, and the
primary SIGKILLed mid-run while Sentinel promotes a replica.

With RT_REDIS_WAIT_REPLICAS=1 nothing acknowledged is lost; without it every hole is
announced with `recovered: false`, and no seq ever names two messages; a tail the new
primary lacks moves the stream to a new epoch."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.delivery import check_order_and_holes
from tests.metrics_text import metric
from tests.sentinel_set import SentinelSet
from tests.tokens import mint
from tests.wsclient import Client

pytestmark = pytest.mark.slow
STREAM = "live:ha"


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelSet]:
    """A primary and one replica: with RT_REDIS_WAIT_REPLICAS=1 the promoted replica holds
    every acknowledged message; the old primary, started again, becomes its replica."""
    ha = SentinelSet(tmp_path / "ha", replicas=1)
    ha.start()
    yield ha
    ha.stop()


def servers(start_server: Any, ha: SentinelSet, **env: str) -> list[Any]:
    extra = dict(REDIS_SENTINELS=ha.sentinels_env, REDIS_URL="", RT_POSITION_CHECK="0.5", RT_REDIS_TIMEOUT="2", **env)
    return [start_server("uvicorn", **extra), start_server("uvicorn", **extra)]


class Subscriber:
    """Every `message` and `subscribed` frame of STREAM, as it came."""

    def __init__(self, client: Client, subscribed: dict[str, Any]) -> None:
        self.client = client
        self.frames: list[dict[str, Any]] = [subscribed]
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            frame = await self.client.recv(120)
            if frame.get("stream") == STREAM and frame["type"] in ("message", "subscribed"):
                self.frames.append(frame)

    def messages(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == "message"]

    def refused(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == "subscribed" and not f["recovered"]]


async def subscribers(srvs: list[Any], count: int) -> list[Subscriber]:
    subs = []
    for n in range(count):
        client = await Client.connect(srvs[n % 2].ws)
        subs.append(Subscriber(client, await client.subscribe(STREAM)))
    return subs


async def publish_all(client: Client, name: str, count: int, acks: list[dict[str, Any]], refused: list[int]) -> None:
    """Publish `count` messages in turn; `unavailable` is retried with the same id."""
    for i in range(count):
        id_ = f"{name}-{i}"
        while True:
            await client.send({"type": "publish", "stream": STREAM, "data": {"id": id_}, "id": id_})
            reply = await client.recv(30)
            if reply["type"] == "ack":
                acks.append({**reply, "data": {"id": id_}})
                break
            assert reply["code"] in ("unavailable", "rate_limited"), reply
            refused.append(1)
            await asyncio.sleep(reply.get("retry_after") or 0.2)


async def run_failover(start_server: Any, ha: SentinelSet, wait: bool) -> tuple[list[Subscriber], list[dict[str, Any]], dict[str, Any]]:
    env = {"RT_REDIS_WAIT_REPLICAS": "1", "RT_REDIS_WAIT_MS": "500"} if wait else {}
    srvs = servers(start_server, ha, **env)
    subs = await subscribers(srvs, 50)
    publishers = [await Client.connect(srvs[n % 2].ws + "?token=" + mint(sub=f"pub{n}", pubs=["live:*"])) for n in range(4)]
    acks: list[dict[str, Any]] = []
    refused: list[int] = []
    tasks = [asyncio.create_task(publish_all(p, f"p{n}", 60, acks, refused)) for n, p in enumerate(publishers)]
    while len(acks) < 60:
        await asyncio.sleep(0.02)
    old = ha.primary_port()
    killed_at = time.monotonic()
    ha.kill(ha.name_of(old))  # mid-run: Sentinel must promote a replica
    new = await asyncio.to_thread(ha.wait_for_new_primary, old)
    promoted_after = time.monotonic() - killed_at
    await asyncio.to_thread(ha.restart, ha.name_of(old))  # back, as the new primary's replica
    await asyncio.wait_for(asyncio.gather(*tasks), 120)
    async with httpx.AsyncClient() as http:
        ready = [(await http.get(srv.http + "/readyz")).json() for srv in srvs]
        texts = [(await http.get(srv.http + "/metrics")).text for srv in srvs]
    primary = await asyncio.to_thread(ha.primary_port)  # Sentinel's word now
    assert new != old and all(r["primary"] == f"127.0.0.1:{primary}" for r in ready), (ready, primary, old)
    final = max((a["epoch"], a["seq"]) for a in acks if a["epoch"] == acks[-1]["epoch"])
    deadline = time.monotonic() + 30
    while not all(any(m["epoch"] == final[0] and m["seq"] >= final[1] for m in s.messages()) for s in subs):
        assert time.monotonic() < deadline, "subscribers did not reach the last acknowledged message"
        await asyncio.sleep(0.1)
    for sub in subs:
        sub.task.cancel()
    for client in publishers + [s.client for s in subs]:
        await client.close()
    figures = {
        "promoted_after_s": round(promoted_after, 1),
        "refused": len(refused),
        "acked": len(acks),
        "recovered": sum(int(metric(t, "rt_holes_filled_total")) for t in texts),  # read back by the hubs
        "announced": sum(int(metric(t, "rt_recoveries_refused_total")) for t in texts),
    }
    return subs, acks, figures


def seqs_name_one_message(subs: list[Subscriber], acks: list[dict[str, Any]]) -> None:
    seen: dict[tuple[str, int], Any] = {(a["epoch"], a["seq"]): a["data"] for a in acks}
    for sub in subs:
        for m in sub.messages():
            key = (m["epoch"], m["seq"])
            assert seen.setdefault(key, m["data"]) == m["data"], f"{key} names two messages"


async def test_with_wait_for_a_replica_a_failover_loses_nothing_acknowledged(start_server: Any, sentinels: SentinelSet) -> None:
    subs, acks, figures = await run_failover(start_server, sentinels, wait=True)
    assert len(acks) == 240 and len({a["data"]["id"] for a in acks}) == 240
    seqs_name_one_message(subs, acks)
    wanted = {(a["epoch"], a["seq"]) for a in acks}
    for sub in subs:
        check_order_and_holes(sub.frames)
        got = [(m["epoch"], m["seq"]) for m in sub.messages()]
        assert len(got) == len(set(got)), "a message delivered twice"
        assert wanted <= set(got), (f"lost: {sorted(wanted - set(got))[:5]}", sub.refused(), len(got))
        assert sub.refused() == []
    print("failover with WAIT:", figures)


async def test_without_wait_every_hole_is_announced_and_no_seq_names_two_messages(
    start_server: Any, sentinels: SentinelSet
) -> None:
    subs, acks, figures = await run_failover(start_server, sentinels, wait=False)
    assert len({a["data"]["id"] for a in acks}) == 240
    seqs_name_one_message(subs, acks)
    wanted = {(a["epoch"], a["seq"]) for a in acks}
    for sub in subs:
        check_order_and_holes(sub.frames)
        got = {(m["epoch"], m["seq"]) for m in sub.messages()}
        if not wanted <= got:
            assert sub.refused(), "acknowledged messages missing without recovered: false"
    print("failover without WAIT:", figures)


async def test_a_tail_the_new_primary_lacks_moves_the_stream_to_a_new_epoch(start_server: Any, tmp_path: Path) -> None:
    ha = SentinelSet(tmp_path / "ha", replicas=1)
    await asyncio.to_thread(ha.start)
    try:
        await lost_tail_is_announced(start_server, ha)
    finally:
        await asyncio.to_thread(ha.stop)


async def lost_tail_is_announced(start_server: Any, ha: SentinelSet) -> None:
    srvs = servers(start_server, ha)
    subs = await subscribers(srvs, 10)
    publisher = await Client.connect(srvs[0].ws + "?token=" + mint(sub="pub", pubs=["live:*"]))
    acks: list[dict[str, Any]] = []
    await publish_all(publisher, "early", 5, acks, [])
    first_epoch = acks[0]["epoch"]
    await asyncio.sleep(0.5)  # the replicas have the early ones
    # The replica stalls (SIGSTOP) and its link is cut while it cannot reconnect: what the
    # primary acknowledges from now on, it holds alone. (Without the cut, the tail would
    # wait in the stalled replica's socket buffer and arrive after SIGCONT.)
    ha.pause("replica1")
    primary = redis.Redis(port=ha.ports["primary"], socket_timeout=2)
    assert primary.client_kill_filter(_type="replica") == 1
    await publish_all(publisher, "tail", 5, acks, [])  # acknowledged by the primary alone
    deadline = time.monotonic() + 10
    while not all(len(s.messages()) >= 10 for s in subs):  # and delivered
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    old = ha.primary_port()
    ha.kill(ha.name_of(old))
    ha.resume("replica1")
    assert await asyncio.to_thread(ha.wait_for_new_primary, old, 60) == ha.ports["replica1"]
    deadline = time.monotonic() + 30
    while not all(any(f["epoch"] != first_epoch for f in s.refused()) for s in subs):
        assert time.monotonic() < deadline, "subscribers were not told of the lost tail"
        await asyncio.sleep(0.1)
    later: list[dict[str, Any]] = []
    await publish_all(publisher, "later", 3, later, [])
    assert all(a["epoch"] != first_epoch for a in later)
    deadline = time.monotonic() + 10
    while not all(any(m["data"]["id"] == "later-2" for m in s.messages()) for s in subs):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    for sub in subs:
        sub.task.cancel()
        check_order_and_holes(sub.frames)
        await sub.client.close()
    await publisher.close()
