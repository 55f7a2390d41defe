"""A session's sockets follow the session, on every server process: logging out closes
them within seconds, and so does deleting the user or taking away staff rights (the
last behind Django's back, found by the periodic re-check)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import BASE_DIR
from tests.wsclient import Client

pytestmark = pytest.mark.slow
SIGNED_OUT = 4003


async def session_socket(server: Any, cookie: str) -> Client:
    client = await Client.connect(server.ws, additional_headers={"Origin": server.http, "Cookie": cookie})
    await client.subscribe("room:follow")
    return client


async def closed_with(client: Client, timeout: float) -> tuple[int | None, float]:
    """The close code the server sent, and how long it took to come."""
    started = time.monotonic()
    try:
        while True:
            await asyncio.wait_for(client.ws.recv(), timeout)
    except websockets.ConnectionClosed as closed:
        return (closed.rcvd.code if closed.rcvd else None), time.monotonic() - started


def shell(server_env: dict[str, str], code: str) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code], cwd=BASE_DIR, env=server_env, capture_output=True, text=True
    )
    assert done.returncode == 0 and "WARNING" not in done.stderr, done.stderr


async def test_logging_out_closes_the_sessions_sockets_on_every_process(start_server: Any, signed_in: Any) -> None:
    a, b = start_server("uvicorn"), start_server("daphne")
    member, other = signed_in(), signed_in()
    on_a, on_b = await session_socket(a, member.cookie), await session_socket(b, member.cookie)
    bystander = await session_socket(b, other.cookie)
    async with httpx.AsyncClient(base_url=a.http, cookies={"sessionid": member.session_key}) as http:
        page = await http.get("/accounts/login/")
        token = page.cookies.get("csrftoken") or http.cookies.get("csrftoken")
        assert token, page.headers
        out = await http.post("/accounts/logout/", headers={"X-CSRFToken": token, "Origin": a.http, "Referer": a.http + "/"})
        assert out.status_code in (200, 302), out.text[:300]
    for client in (on_a, on_b):
        code, took = await closed_with(client, 10)
        assert code == SIGNED_OUT and took < 5, (code, took)
    # Another person's socket is left alone, and the logged-out cookie is now a guest's.
    await bystander.send({"type": "ping"})
    assert (await bystander.recv_type("pong"))["type"] == "pong"
    again = await Client.connect(a.ws, additional_headers={"Origin": a.http, "Cookie": member.cookie})
    await again.subscribe("room:follow")
    await again.send({"type": "publish", "stream": "room:follow", "data": {"text": "x"}, "id": "1"})
    assert (await again.recv_type("error"))["code"] == "forbidden"
    await again.close()
    await bystander.close()


async def test_deleting_the_user_closes_its_sockets(start_server: Any, signed_in: Any, server_env: dict[str, str]) -> None:
    a = start_server("uvicorn")
    member = signed_in()
    client = await session_socket(a, member.cookie)
    shell(server_env, f"from django.contrib.auth.models import User; User.objects.get(pk={member.user_id}).delete()")
    code, took = await closed_with(client, 10)
    assert code == SIGNED_OUT and took < 5, (code, took)


async def test_staff_rights_taken_behind_djangos_back_end_within_the_recheck(
    start_server: Any, signed_in: Any, server_env: dict[str, str]
) -> None:
    a = start_server("uvicorn", RT_SESSION_RECHECK="2")
    staff = signed_in(staff=True)
    client = await session_socket(a, staff.cookie)
    ok = await client.request({"type": "publish", "stream": "live:staff-only", "data": 1, "id": "1"})
    assert ok["type"] == "ack", ok
    # A queryset update sends no signal: only the periodic re-check can see it.
    shell(server_env, f"from django.contrib.auth.models import User; User.objects.filter(pk={staff.user_id}).update(is_staff=False)")
    code, took = await closed_with(client, 10)
    assert code == SIGNED_OUT and took < 2 + 2, (code, took)
    again = await Client.connect(a.ws, additional_headers={"Origin": a.http, "Cookie": staff.cookie})
    refused = await again.request({"type": "publish", "stream": "live:staff-only", "data": 2, "id": "2"})
    assert refused["code"] == "forbidden", refused
    await again.close()
