"""The served app answers health checks and WebSocket frames under both servers."""

from __future__ import annotations

import asyncio
import sys

import httpx

from config.settings import BASE_DIR
from tests.wsclient import Client


async def test_healthz_and_ping(server) -> None:
    async with httpx.AsyncClient() as http:
        health = await http.get(server.http + "/healthz")
        assert health.status_code == 200 and health.json() == {"status": "ok", "protocol": "1.1"}
        assert (await http.get(server.http + "/readyz")).status_code == 200
    client = await Client.connect(server.ws)
    assert await client.request({"type": "ping"}) == {"type": "pong"}
    await client.close()


async def test_publish_and_receive_across_processes(start_server) -> None:
    a, b = start_server("uvicorn"), start_server("uvicorn")
    sub = await Client.connect(b.ws)
    first = await sub.subscribe("live:smoke")
    assert first["recovered"] is True and first["seq"] == 0
    from tests.tokens import mint

    pub = await Client.connect(a.ws + "?token=" + mint(pubs=["live:*"]))
    ack = await pub.request({"type": "publish", "stream": "live:smoke", "data": {"score": [1, 0]}, "id": "m1"})
    assert ack["type"] == "ack" and ack["seq"] == 1 and ack["epoch"] == first["epoch"]
    [msg] = await sub.messages("live:smoke", 1)
    assert msg["data"] == {"score": [1, 0]} and msg["seq"] == 1 and msg["sender"] is None
    await sub.close()
    await pub.close()


async def test_a_command_that_publishes_and_exits_fans_out_before_exiting(start_server, server_env) -> None:
    """`publish()` returns once Redis holds the message and leaves the pub/sub fan-out to
    its loop thread; at exit that fan-out is awaited, so subscribers get the message live
    and not only at the next position check (set far away here)."""
    srv = start_server("uvicorn", RT_POSITION_CHECK="120")
    sub = await Client.connect(srv.ws)
    await sub.subscribe("live:cmd-exit")
    command = [sys.executable, "manage.py", "publish", "live:cmd-exit", '{"final": true}']
    done = await asyncio.create_subprocess_exec(*command, cwd=BASE_DIR, env=server_env, stdout=asyncio.subprocess.PIPE)
    out, _ = await done.communicate()
    assert done.returncode == 0 and out.startswith(b"seq 1 epoch ")
    [msg] = await sub.messages("live:cmd-exit", 1, timeout=10)
    assert msg["data"] == {"final": True} and msg["seq"] == 1
    await sub.close()
