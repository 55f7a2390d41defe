"""The `ha` profile of docker-compose.yml up for real: `redis` with `redis-replica` under
three Sentinels, the web replicas asking Sentinel for the primary and acknowledging a
publish only once the replica holds it (RT_REDIS_WAIT_REPLICAS=1), used only through nginx.

The primary is killed (`docker kill`): Sentinel promotes the replica, `/readyz` names it,
and publishing goes on with no web container restarted, once the killed server is started
again as an operator would (Sentinel makes it a replica of the new primary, so that `WAIT`
has a replica to count). Everything acknowledged before and after is read back once, in order.

Collected through test_compose.py, so that the two stacks share one test worker (and one
container engine) when the suite runs in parallel. Run with `.venv/bin/pytest -m deploy`
(conftest.py says what it installs and starts).
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deploy.conftest import DOCKER, SERVICES, Progress, Stack, compose_stack, output
from tests.tokens import mint

pytestmark = [pytest.mark.slow, pytest.mark.deploy, pytest.mark.timeout(1800)]

SENTINELS = ("sentinel1", "sentinel2", "sentinel3")
# No REDIS_SENTINELS: the profile alone puts every app container on the Sentinels.
# A network of its own: test_compose.py's plain stack is still up beside it.
HA_ENV = {"RT_REDIS_WAIT_REPLICAS": "1", "RT_NET": "172.30.58"}
CHOSEN = "[topology] Redis: Sentinel (sentinel1:26379,sentinel2:26379,sentinel3:26379): the ha profile runs"
PROMOTION_SECONDS = 30


@pytest.fixture(scope="module")
def ha_stack(images: Path, progress: Progress) -> Iterator[Stack]:
    progress(" ".join(f"{k}={v}" for k, v in HA_ENV.items()) + " docker-compose --profile ha up -d")
    with compose_stack(images, progress, profiles=("ha",), env=HA_ENV) as stack:
        yield stack


class Servers:
    """redis-cli in the Redis and Sentinel containers (`docker exec`, ids looked up once)."""

    def __init__(self, stack: Stack) -> None:
        self.ids = {name: stack.container(name) for name in ("redis", "redis-replica", *SENTINELS)}

    def cli(self, service: str, *args: str) -> str:
        return output([DOCKER, "exec", self.ids[service], "redis-cli", *args])

    def replication(self, service: str) -> dict[str, str]:
        """INFO replication of a Redis server, as a dict."""
        lines = self.cli(service, "INFO", "replication").splitlines()
        return dict(line.strip().split(":", 1) for line in lines if ":" in line)

    def sentinel_view(self, sentinel: str) -> dict[str, str]:
        """`SENTINEL MASTER mymaster` of one Sentinel, as a dict."""
        lines = self.cli(sentinel, "-p", "26379", "SENTINEL", "MASTER", "mymaster").splitlines()
        return dict(zip(lines[::2], lines[1::2], strict=True))

    def sentinel_replicas(self, sentinel: str) -> list[dict[str, str]]:
        """`SENTINEL REPLICAS mymaster` of one Sentinel: a dict per replica (each begins with `name`)."""
        lines = self.cli(sentinel, "-p", "26379", "SENTINEL", "REPLICAS", "mymaster").splitlines()
        replicas: list[dict[str, str]] = []
        for key, value in zip(lines[::2], lines[1::2], strict=True):
            if key == "name":
                replicas.append({})
            replicas[-1][key] = value
        return replicas

    def wait_for_sentinels(self, progress: Progress, primary: str, seconds: float = 60) -> None:
        """Every Sentinel names `primary`, sees the two others and one replica (so that a
        failover can be voted and has a replica to promote)."""
        deadline = time.monotonic() + seconds
        while True:
            views = {name: self.sentinel_view(name) for name in SENTINELS}
            ready = all(f"{v['ip']}:{v['port']}" == primary and v["flags"] == "master" and v["num-other-sentinels"] == "2"
                        and v["num-slaves"] == "1" for v in views.values())
            if ready:
                progress(f"the three Sentinels agree: primary {primary}, one replica, each sees the two others")
                return
            assert time.monotonic() < deadline, f"Sentinels not ready within {seconds:g} s: {views}"
            time.sleep(0.5)

    def wait_for_replica(self, service: str, of: str, primary: str, seconds: float = 60) -> float:
        """Seconds until `service` replicates from the service `of` at `primary` (named by
        its service name, as in its command line, or by address, as Sentinel names it)."""
        started = time.monotonic()
        address, port = primary.split(":")
        while True:
            info = self.replication(service)
            if (info.get("role"), info.get("master_port"), info.get("master_link_status")) == ("slave", port, "up") \
                    and info.get("master_host") in (of, address):
                return time.monotonic() - started
            assert time.monotonic() - started < seconds, f"{service} not a replica of {of} within {seconds:g} s: {info}"
            time.sleep(0.5)


def readyz(http: httpx.Client) -> tuple[int, dict[str, Any]]:
    try:
        answer = http.get("/readyz")
    except httpx.TransportError as exc:
        return 0, {"error": repr(exc)}
    return answer.status_code, answer.json()


def primaries(stack: Stack, http: httpx.Client, asks: int = 6) -> dict[str, set[str]]:
    """The primary each web replica names in /readyz (round robin reaches both)."""
    named: dict[str, set[str]] = {}
    for _ in range(asks):
        answer = http.get("/readyz")
        assert answer.status_code == 200, answer.text
        named.setdefault(stack.replica(answer.headers["X-Upstream"]), set()).add(answer.json()["primary"])
    return named


class Publisher:
    """Publishes over the HTTP API with a `pubs` token; retries `unavailable` answers (and
    answers that never came) with the same `id` until acknowledged."""

    def __init__(self, stack: Stack, stream: str) -> None:
        self.stream = stream
        token = mint(secret=stack.env["RT_TOKEN_SECRET"], ttl=1200, pubs=[stream])
        self.http = httpx.Client(base_url=stack.base, timeout=15, headers={"Authorization": f"Bearer {token}"})
        self.acked: list[tuple[int, int]] = []  # (n, seq)
        self.epochs: set[str] = set()
        self.refused = 0

    def publish(self, n: int, seconds: float = 90) -> float:
        """Seconds until message `n` was acknowledged."""
        started = time.monotonic()
        while True:
            try:
                sent = self.http.post(f"/api/streams/{self.stream}/messages", json={"data": {"n": n}, "id": f"ha-{n}"})
            except httpx.TransportError:
                self.refused += 1
            else:
                if sent.status_code in (200, 201):
                    body = sent.json()
                    self.acked.append((n, body["seq"]))
                    self.epochs.add(body["epoch"])
                    return time.monotonic() - started
                assert sent.status_code == 503 and sent.json()["error"]["code"] == "unavailable", (sent.status_code, sent.text)
                self.refused += 1
            assert time.monotonic() - started < seconds, f"message {n} not acknowledged within {seconds:g} s"
            time.sleep(0.25)

    def close(self) -> None:
        self.http.close()


def started_at(stack: Stack) -> dict[str, tuple[str, int]]:
    return {name: (info["State"]["StartedAt"], info["RestartCount"])
            for name in ("web1", "web2") for info in [stack.inspect(name)]}


def test_sentinel_promotes_the_replica_and_nothing_acknowledged_is_lost(ha_stack: Stack, progress: Progress) -> None:
    stack = ha_stack
    primary = f"{stack.address('redis')}:6379"
    replica = f"{stack.address('redis-replica')}:6379"
    progress(f"redis (primary) at {primary}, redis-replica at {replica}")
    for service in SERVICES[1:4]:
        assert "RT_REDIS_WAIT_REPLICAS=1" in stack.inspect(service)["Config"]["Env"], service
        said = subprocess.run([DOCKER, "logs", stack.container(service)], capture_output=True, text=True, timeout=60).stderr
        assert CHOSEN in said.splitlines(), (service, said[:2000])
    progress("web1, web2 and the archiver found the three Sentinels by themselves")
    servers = Servers(stack)
    servers.wait_for_replica("redis-replica", "redis", primary)
    servers.wait_for_sentinels(progress, primary)
    web_before = started_at(stack)

    stream = "live:deploy-ha-" + uuid.uuid4().hex[:8]
    publisher = Publisher(stack, stream)
    with httpx.Client(base_url=stack.base, timeout=10) as http:
        assert primaries(stack, http) == {"web1": {primary}, "web2": {primary}}
        progress("/readyz from web1 and web2 names redis as the primary")
        for n in range(1, 11):
            publisher.publish(n)
        progress(f"published 10 messages to {stream} over the HTTP API, each acknowledged (WAIT 1)")
        read = http.get(f"/api/streams/{stream}/messages", params={"limit": 100})
        assert read.status_code == 200, read.text
        assert [(m["seq"], m["data"]["n"]) for m in read.json()["messages"]] == [(seq, n) for n, seq in publisher.acked]

        progress(f"docker kill redis (the primary, {primary})")
        killed_at = time.monotonic()
        output([DOCKER, "kill", servers.ids["redis"]])
        last: tuple[int, dict[str, Any]] = (0, {})
        while True:
            last = readyz(http)
            if last[0] == 200 and last[1]["primary"] == replica:
                break
            assert time.monotonic() - killed_at < PROMOTION_SECONDS, f"no promotion within {PROMOTION_SECONDS} s: {last}"
            time.sleep(0.25)
        promoted = time.monotonic() - killed_at
        progress(f"/readyz names redis-replica ({replica}) {promoted:.1f} s after the kill")
        assert primaries(stack, http) == {"web1": {replica}, "web2": {replica}}
        assert servers.replication("redis-replica")["role"] == "master"

        # The new primary has no replica yet: with WAIT 1, a publish is refused until one
        # exists. Start the killed server again; Sentinel makes it a replica of the new one.
        refused = publisher.refused
        output([DOCKER, "start", servers.ids["redis"]])
        progress("docker start redis: the old primary is back, to become a replica of redis-replica")
        took = publisher.publish(11, seconds=120)
        replicas_then = servers.replication("redis-replica")["connected_slaves"]
        progress(f"message 11 acknowledged {took:.1f} s after the restart, {publisher.refused - refused} "
                 f"unavailable answers retried with the same id (the new primary had {replicas_then} replicas then)")
        # Acknowledged with WAIT 1 means a replica held it: never while the primary had none.
        assert int(replicas_then) >= 1, "message 11 was acknowledged while no replica held it"
        took = servers.wait_for_replica("redis", "redis-replica", replica)
        progress(f"redis is a replica of redis-replica, link up, {took:.1f} s after message 11")
        for n in range(12, 21):
            publisher.publish(n)
        progress(f"published 10 more after the failover; {time.monotonic() - killed_at:.1f} s from the kill")
        started = time.monotonic()
        for name in SENTINELS:  # and Sentinel sees the old primary as a healthy replica (INFO every 10 s)
            while True:
                view = servers.sentinel_view(name)
                assert f"{view['ip']}:{view['port']}" == replica and view["flags"] == "master", (name, view)
                found = [r for r in servers.sentinel_replicas(name) if f"{r['ip']}:{r['port']}" == primary]
                if len(found) == 1 and found[0]["flags"] == "slave" and found[0]["master-link-status"] == "ok":
                    break
                assert time.monotonic() - started < 30, (name, found)
                time.sleep(0.5)
        progress(f"the three Sentinels see redis as a healthy replica of redis-replica ({time.monotonic() - started:.1f} s)")

        read = http.get(f"/api/streams/{stream}/messages", params={"limit": 100})
        assert read.status_code == 200, read.text
        body = read.json()
    publisher.close()
    got = [(m["seq"], m["data"]["n"]) for m in body["messages"]]
    assert [n for n, _ in publisher.acked] == list(range(1, 21))
    assert got == [(seq, n) for n, seq in publisher.acked], got  # once each, in order, none lost
    assert [seq for seq, _ in got] == list(range(got[0][0], got[0][0] + 20)), got  # no hole in the seqs
    assert publisher.epochs == {body["epoch"]}, (publisher.epochs, body["epoch"])  # no tail taken back
    assert started_at(stack) == web_before, "a web container was restarted"
    progress("all 20 acknowledged messages read back once, in order, in one epoch; web1 and web2 never restarted")
