"""A Redis that hangs (SIGSTOP, the way a stalled host or a full disk behaves): publishes
answer `unavailable` within RT_REDIS_TIMEOUT, a retry with the same `id` after SIGCONT
returns the same seq, and subscribers get every acknowledged message once, in order."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from config.embedded_redis import EmbeddedRedis
from tests.tokens import mint
from tests.wsclient import Client

pytestmark = pytest.mark.slow
TIMEOUT = 2.0
SLACK = 1.5
STREAM = "room:hang"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis of this test's own: stopping it must not stall the session's other tests."""
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    yield server
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGCONT)
    server.stop()


async def publish(client: Client, id: str, timeout: float = 15.0) -> dict[str, Any]:
    await client.send({"type": "publish", "stream": STREAM, "data": {"text": id}, "id": id})
    while True:
        frame = await client.recv(timeout)
        if frame.get("id") == id:
            return frame


async def acked(client: Client, id: str, deadline: float = 20.0) -> dict[str, Any]:
    """Publish `id` until it is acknowledged (Redis may take a moment to come back)."""
    stop = time.monotonic() + deadline
    while True:
        reply = await publish(client, id)
        if reply["type"] == "ack":
            return reply
        assert reply["code"] == "unavailable", reply
        assert time.monotonic() < stop, f"{id} not acknowledged within {deadline} s"
        await asyncio.sleep(0.2)


async def test_a_hung_redis_answers_unavailable_in_bounded_time_and_loses_nothing(
    own_redis: EmbeddedRedis, start_server: Any
) -> None:
    srv = start_server("uvicorn", REDIS_URL=own_redis.url, RT_REDIS_TIMEOUT=str(TIMEOUT))
    token = mint(sub="hang-user", pubs=[STREAM])
    subscriber = await Client.connect(srv.ws)
    publisher = await Client.connect(srv.ws + "?token=" + token)
    await subscriber.subscribe(STREAM)
    acks = [await acked(publisher, f"before-{i}") for i in range(5)]

    assert own_redis.process is not None
    os.kill(own_redis.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        reply = await publish(publisher, "caught")
        ws_took = time.monotonic() - started
        started = time.monotonic()
        async with httpx.AsyncClient(base_url=srv.http, timeout=15) as http:
            answer = await http.post(
                f"/api/streams/{STREAM}/messages",
                json={"data": {"text": "caught-http"}, "id": "caught-http"},
                headers={"Authorization": f"Bearer {token}"},
            )
        http_took = time.monotonic() - started
    finally:
        os.kill(own_redis.process.pid, signal.SIGCONT)
    assert reply["type"] == "error" and reply["code"] == "unavailable", reply
    assert "same id" in reply["message"]
    assert ws_took < TIMEOUT + SLACK, ws_took
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "unavailable", answer.text
    assert http_took < TIMEOUT + SLACK, http_took

    retry = await acked(publisher, "caught")
    async with httpx.AsyncClient(base_url=srv.http, timeout=15) as http:
        again = await http.post(
            f"/api/streams/{STREAM}/messages",
            json={"data": {"text": "caught-http"}, "id": "caught-http"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert again.status_code in (200, 201), again.text
        acks += [retry, again.json()]
        acks += [await acked(publisher, f"after-{i}") for i in range(5)]
        stored = (await http.get(f"/api/streams/{STREAM}/messages")).json()["messages"]
    # The caught publishes were stored once each, under the seq their retries returned.
    texts = [m["data"]["text"] for m in stored]
    assert texts.count("caught") == 1 and texts.count("caught-http") == 1, texts
    assert stored[texts.index("caught")]["seq"] == retry["seq"]
    assert stored[texts.index("caught-http")]["seq"] == again.json()["seq"]

    # Every acknowledged message reached the subscriber once, in order.
    wanted = {a["seq"] for a in acks}
    seen: list[int] = []
    while not wanted <= set(seen):
        frame = await subscriber.recv(15)
        if frame["type"] == "message":
            seen.append(frame["seq"])
        else:
            assert frame["type"] != "subscribed" or frame["recovered"], frame
    assert seen == sorted(set(seen)), seen
    assert seen == list(range(1, max(wanted) + 1)), seen
    await subscriber.close()
    await publisher.close()
