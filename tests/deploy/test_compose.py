"""Deployed as teams deploy it: docker-compose.yml up for real, used only through nginx.

A person signs up on the sign-up page and chats over WebSockets from one replica to the
other; a backend sends a notification over the HTTP API that the person reads back; the
replicas see the real client address through the proxy; and when a replica is killed in
the middle of a stream, a client reconnects through the proxy and recovers with `since`,
missing nothing that was published meanwhile on the other replica.

Run alone with `.venv/bin/pytest -m deploy` (conftest.py says what it installs and starts).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import websockets

from tests.deploy.conftest import DOCKER, SERVICES, Progress, Stack, output
from tests.tokens import mint
from tests.wsclient import Client

pytestmark = [pytest.mark.slow, pytest.mark.deploy, pytest.mark.timeout(2400)]

PASSWORD = "a-long-deploy-test-passphrase"
SPOOFED = "203.0.113.99"  # what a client claims in X-Forwarded-For; never believed


@dataclass(frozen=True)
class Account:
    username: str
    user_id: str
    cookie: str  # "sessionid=..."


async def connect(stack: Stack, *, to: str | None = None, avoid: str | None = None, token: str | None = None,
                  cookie: str | None = None, tries: int = 20) -> tuple[Client, str]:
    """A WebSocket through the proxy, and the replica it reached; with `to` or `avoid`,
    connects again (round robin moves on) until the replica is the one asked for."""
    headers = {"Origin": stack.base}
    if cookie:
        headers["Cookie"] = cookie
    url = stack.ws + (f"?token={token}" if token else "")
    for _ in range(tries):
        client = await Client.connect(url, additional_headers=headers, open_timeout=10)
        assert client.ws.response is not None
        replica = stack.replica(client.ws.response.headers["X-Upstream"])
        if (to is None or replica == to) and (avoid is None or replica != avoid):
            return client, replica
        await client.close()
    raise AssertionError(f"no connection reached {to or 'a replica other than ' + str(avoid)} in {tries} tries")


def other(replica: str) -> str:
    return {"web1": "web2", "web2": "web1"}[replica]


@pytest.fixture(scope="module")
def account(stack: Stack, progress: Progress) -> Account:
    """A person signed up through the sign-up page behind the proxy (claiming a forged address)."""
    username = "deploy-" + uuid.uuid4().hex[:8]
    with httpx.Client(base_url=stack.base, timeout=20) as http:
        page = http.get("/accounts/signup/")
        assert page.status_code == 200, page.text[:300]
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert csrf, "no CSRF token in the sign-up form"
        form = {"csrfmiddlewaretoken": csrf.group(1), "username": username, "password1": PASSWORD,
                "password2": PASSWORD, "next": "/rooms/"}
        done = http.post("/accounts/signup/", data=form, headers={"X-Forwarded-For": SPOOFED})
        assert done.status_code == 302 and done.headers["Location"] == "/rooms/", (done.status_code, done.text[:500])
        session = http.cookies.get("sessionid")
        assert session, "signed up but no session cookie"
        rooms = http.get("/rooms/")
        found = re.search(r'data-user-id="(\d+)"', rooms.text)
        assert rooms.status_code == 200 and found, "the rooms page does not show a signed-in person"
    progress(f"signed up {username} (user {found.group(1)}) through the proxy")
    return Account(username, found.group(1), f"sessionid={session}")


def test_every_service_is_healthy_and_only_the_proxy_is_published(stack: Stack) -> None:
    for service in SERVICES:
        info = stack.inspect(service)
        assert info["State"]["Health"]["Status"] == "healthy", service
        bound = {port: hosts for port, hosts in (info["NetworkSettings"]["Ports"] or {}).items() if hosts}
        if service == "proxy":
            assert bound == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(stack.port)}]}, bound
        else:
            assert bound == {}, (service, bound)  # Redis and the replicas: on the compose network only
    appendonly = stack.compose_output("exec", "-T", "redis", "redis-cli", "CONFIG", "GET", "appendonly").split()
    assert appendonly == ["appendonly", "yes"]
    for service in ("web1", "web2"):
        env = stack.inspect(service)["Config"]["Env"]
        assert "WORKERS=1" in env and f"FORWARDED_ALLOW_IPS={stack.net}.10" in env, env
        processes = output([DOCKER, "top", stack.container(service), "-ww", "-eo", "pid,args"])
        assert f"--proxy-headers --forwarded-allow-ips {stack.net}.10" in processes, processes


def test_readyz_through_the_proxy_from_both_replicas(stack: Stack) -> None:
    answered = set()
    with httpx.Client(base_url=stack.base, timeout=10) as http:
        for _ in range(10):
            ready = http.get("/readyz")
            assert ready.status_code == 200 and ready.json()["status"] == ready.json()["redis"] == "ok", ready.text
            answered.add(stack.replica(ready.headers["X-Upstream"]))
        assert http.get("/healthz").status_code == 200
        assert http.get("/metrics").status_code == 403  # a client through the proxy is not loopback
    assert answered == {"web1", "web2"}


def test_the_replicas_see_the_real_client_address(stack: Stack, account: Account) -> None:
    """The sign-up throttle counts by the address uvicorn took from X-Forwarded-For: the one
    nginx saw, neither the proxy's own nor the one the client forged."""
    keys = stack.compose_output("exec", "-T", "redis", "redis-cli", "--scan", "--pattern", "rt:throttle:signup:*").split()
    counted = [key.rsplit(":", 1)[-1] for key in keys]
    access_log = stack.compose_output("logs", "--no-color", "proxy")
    seen = {line.split("|", 1)[-1].split()[0] for line in access_log.splitlines() if '"POST /accounts/signup/ ' in line}
    assert len(counted) == 1 and seen == set(counted), (counted, seen)
    assert counted[0] not in (SPOOFED, f"{stack.net}.10"), counted


def test_chat_from_one_replica_reaches_a_subscriber_on_the_other(stack: Stack, account: Account, progress: Progress) -> None:
    room = "room:deploy-" + uuid.uuid4().hex[:8]

    async def chat() -> None:
        listener, listener_on = await connect(stack, cookie=account.cookie)
        speaker, speaker_on = await connect(stack, cookie=account.cookie, avoid=listener_on)
        progress(f"chat: subscriber on {listener_on}, publisher on {speaker_on}")
        try:
            await listener.subscribe(room)
            ack = await speaker.request({"type": "publish", "stream": room, "data": {"text": "hello across"}, "id": "m1"})
            assert ack["type"] == "ack" and ack["id"] == "m1", ack
            [message] = await listener.messages(room, 1)
            assert message["seq"] == ack["seq"] and message["data"] == {"text": "hello across"}
            assert message["sender"] == {"id": account.user_id, "name": account.username}
        finally:
            await listener.close()
            await speaker.close()

    asyncio.run(chat())


def test_a_notification_over_the_http_api_is_delivered_and_read_back(stack: Stack, account: Account) -> None:
    feed = f"user:{account.user_id}"
    token = mint(secret=stack.env["RT_TOKEN_SECRET"], ttl=300, pubs=[feed])

    async def notify() -> dict[str, Any]:
        reader, _ = await connect(stack, cookie=account.cookie)
        try:
            await reader.subscribe(feed)
            async with httpx.AsyncClient(base_url=stack.base, timeout=15) as http:
                sent = await http.post(f"/api/streams/{feed}/messages", json={"data": {"title": "deployed"}, "id": "n1"},
                                       headers={"Authorization": f"Bearer {token}"})
            assert sent.status_code == 201, sent.text
            [live] = await reader.messages(feed, 1)
            assert live["seq"] == sent.json()["seq"] and live["data"] == {"title": "deployed"}
            return sent.json()  # type: ignore[no-any-return]
        finally:
            await reader.close()

    sent = asyncio.run(notify())
    with httpx.Client(base_url=stack.base, timeout=15, headers={"Cookie": account.cookie}) as http:
        read = http.get(f"/api/streams/{feed}/messages", params={"limit": 10})
    assert read.status_code == 200, read.text
    body = read.json()
    assert body["epoch"] == sent["epoch"] and [(m["seq"], m["data"]) for m in body["messages"]] == [(sent["seq"], {"title": "deployed"})]


def test_a_client_recovers_through_the_proxy_when_its_replica_is_killed(stack: Stack, progress: Progress) -> None:
    """Runs last in this module: it kills a replica."""
    room = "room:deploy-recover-" + uuid.uuid4().hex[:8]
    token = mint(secret=stack.env["RT_TOKEN_SECRET"], ttl=600, pubs=[room])
    published: list[int] = []

    async def publish(client: Client, n: int) -> None:
        ack = await client.request({"type": "publish", "stream": room, "data": {"n": n}, "id": f"p{n}"}, timeout=10)
        assert ack["type"] == "ack" and ack["id"] == f"p{n}", ack
        published.append(ack["seq"])

    async def scenario() -> str:
        listener, victim = await connect(stack)
        survivor = other(victim)
        publisher, _ = await connect(stack, token=token, to=survivor)
        progress(f"recovery: subscriber on {victim} (to be killed), publisher on {survivor}")
        subscribed = await listener.subscribe(room)
        epoch = subscribed["epoch"]
        for n in range(1, 6):
            await publish(publisher, n)
        got = [m["seq"] for m in await listener.messages(room, 5)]

        async def keep_publishing() -> None:
            for n in range(6, 26):
                await publish(publisher, n)
                await asyncio.sleep(0.05)

        stream = asyncio.create_task(keep_publishing())
        while got[-1] < 8:
            got.append((await listener.messages(room, 1))[0]["seq"])
        progress(f"docker kill {victim} at seq {got[-1]}, mid-stream")
        kill = await asyncio.create_subprocess_exec(DOCKER, "kill", stack.container(victim))
        assert await kill.wait() == 0
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                frame = await listener.recv(timeout=15)
                if frame["type"] == "message" and frame["stream"] == room:
                    got.append(frame["seq"])
        await stream
        for n in range(26, 31):  # while the subscriber is away
            await publish(publisher, n)
        progress(f"subscriber lost its socket after seq {got[-1]}; {published[-1] - got[-1]} messages published since")

        started = time.monotonic()
        while True:
            try:
                listener, now_on = await connect(stack)
                break
            except (OSError, websockets.InvalidHandshake):
                assert time.monotonic() - started < 30, "could not reconnect through the proxy within 30 s"
                await asyncio.sleep(0.5)
        assert now_on == survivor
        again = await listener.subscribe(room, since={"epoch": epoch, "seq": got[-1]})
        assert again["recovered"] is True and again["epoch"] == epoch, again
        progress(f"reconnected to {now_on} in {time.monotonic() - started:.1f} s, recovered with since seq {got[-1]}")
        missed = published[-1] - got[-1]
        got += [m["seq"] for m in await listener.messages(room, missed)]
        await publish(publisher, 31)  # and live delivery goes on
        got += [m["seq"] for m in await listener.messages(room, 1)]
        await listener.close()
        await publisher.close()
        assert published == list(range(1, 32))
        assert got == published  # every message once, in order, none missing
        return survivor

    survivor = asyncio.run(scenario())
    with httpx.Client(base_url=stack.base, timeout=10) as http:
        for _ in range(4):  # the proxy sends everything to the replica left
            ready = http.get("/readyz")
            assert ready.status_code == 200 and stack.replica(ready.headers["X-Upstream"]) == survivor


# The `ha` and `cluster` profiles' stacks and tests (tests/deploy/ha_profile.py,
# cluster_profile.py), in this module so that `--dist loadfile` runs every stack on one
# worker, one after the other.
from tests.deploy.cluster_profile import (  # noqa: E402, F401
    cluster_stack,
    test_the_cluster_profile_serves_every_shard_and_survives_a_primary_killed,
)
from tests.deploy.ha_profile import ha_stack, test_sentinel_promotes_the_replica_and_nothing_acknowledged_is_lost  # noqa: E402, F401
