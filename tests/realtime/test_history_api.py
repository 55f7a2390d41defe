"""Reading history over HTTP past the backlog (docs/protocol.md, "Older
messages"): `before` pages and a `since` served from the archive, in process against the
real test Redis and the test database, with the archive worker run for real."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import AsyncClient

from realtime import runtime
from realtime.archive import Archiver
from realtime.models import ArchivedMessage
from realtime.publishing import Sender, apublish
from realtime.redis_clients import sync_client
from tests.conftest import BASE_DIR
from tests.tokens import mint
from tests.wsclient import Client

pytestmark = pytest.mark.django_db(transaction=True)

ALICE = Sender(key="u1", id="1", name="alice")


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    c = sync_client()
    yield c
    c.close()


@pytest.fixture
def small_backlog(backlog_size: Callable[[int], None]) -> None:
    """A backlog that keeps few messages, so history soon lives in the archive only."""
    backlog_size(500)


async def drain(client: redis.Redis) -> int:
    archiver = Archiver(client, prefix=settings.RT_KEY_PREFIX, buckets=settings.RT_BUCKETS, batch_size=500)
    return await sync_to_async(archiver.drain)()


async def publish_many(stream: str, count: int) -> None:
    for i in range(1, count + 1):
        await apublish(stream, {"text": f"m{i}"}, ALICE)


async def get(path: str, **headers: str) -> Any:
    return await AsyncClient().get(path, headers=headers)


def assert_bad_request(response: Any) -> str:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "bad_request" and error["message"]
    return str(error["message"])


async def test_before_walks_3000_messages_over_backlog_and_archive(client: redis.Redis, small_backlog: None) -> None:
    stream = "room:walk"
    await publish_many(stream, 3000)
    assert await drain(client) == 3000
    kept = await runtime.current().backlog.read(stream)
    assert kept.first == 2501  # the backlog has the newest 500 only

    # What a page shows first: the last kept messages, oldest first ...
    first = (await get(f"/api/streams/{stream}/messages?limit=100")).json()
    seen = [m["seq"] for m in reversed(first["messages"])]
    epoch, before = first["epoch"], seen[-1]
    pages = 0
    # ... then older pages with `before` = the oldest seq shown, until an empty page.
    while True:
        response = await get(f"/api/streams/{stream}/messages?before={before}&epoch={epoch}&limit=128")
        assert response.status_code == 200, response.content
        page = response.json()
        assert page["epoch"] == epoch and page["seq"] == 3000 and page["recovered"] is True
        if not page["messages"]:
            break
        pages += 1
        seqs = [m["seq"] for m in page["messages"]]
        assert seqs == list(range(before - 1, before - 1 - len(seqs), -1))  # newest first, no hole
        assert all(m["data"] == {"text": f"m{m['seq']}"} and "type" not in m for m in page["messages"])
        assert all(m["sender"] == {"id": "1", "name": "alice"} and m["epoch"] == epoch for m in page["messages"])
        seen.extend(seqs)
        before = seqs[-1]
    assert seen == list(range(3000, 0, -1))  # every seq once, in order
    assert pages == 23  # 2,900 older messages in pages of 128


async def test_before_with_defaults_reads_from_the_latest(client: redis.Redis, small_backlog: None) -> None:
    stream = "room:edges"
    await publish_many(stream, 600)
    await drain(client)
    base = f"/api/streams/{stream}/messages"
    past_the_end = (await get(f"{base}?before=9999&limit=3")).json()
    assert [m["seq"] for m in past_the_end["messages"]] == [600, 599, 598]
    straddle = (await get(f"{base}?before=105&limit=10")).json()  # backlog 101..600, archive below
    assert [m["seq"] for m in straddle["messages"]] == list(range(104, 94, -1))
    beginning = (await get(f"{base}?before=1")).json()
    assert beginning["messages"] == [] and beginning["recovered"] is True


async def test_an_older_epoch_is_paged_from_the_archive(client: redis.Redis) -> None:
    stream = "room:epochs"
    await ArchivedMessage.objects.abulk_create(
        ArchivedMessage(stream=stream, epoch="old", seq=s, ts=1, data={"text": str(s)}) for s in range(1, 8)
    )
    await publish_many(stream, 2)  # the current epoch is a new one
    base = f"/api/streams/{stream}/messages"
    newest = (await get(f"{base}?before=100&epoch=old&limit=3")).json()
    assert newest["epoch"] == "old" and newest["seq"] == 7
    assert [m["seq"] for m in newest["messages"]] == [7, 6, 5]
    rest = (await get(f"{base}?before=5&epoch=old")).json()
    assert [m["seq"] for m in rest["messages"]] == [4, 3, 2, 1]
    current = (await get(f"{base}?before=100")).json()
    assert current["epoch"] != "old" and [m["seq"] for m in current["messages"]] == [2, 1]


async def test_a_page_with_a_hole_says_recovered_false(client: redis.Redis, backlog_size: Callable[[int], None]) -> None:
    backlog_size(5)
    stream = "room:lagging"
    await publish_many(stream, 20)
    await drain(client)  # 1..20 archived
    await publish_many(stream, 20)  # 21..40: 36..40 kept, 21..35 queued, not archived yet
    base = f"/api/streams/{stream}/messages"
    holed = (await get(f"{base}?before=38&limit=10")).json()
    assert [m["seq"] for m in holed["messages"]] == [37, 36, 20, 19, 18, 17, 16, 15, 14, 13]
    assert holed["recovered"] is False  # the seqs say where, the flag says that
    await drain(client)
    whole = (await get(f"{base}?before=38&limit=10")).json()
    assert [m["seq"] for m in whole["messages"]] == list(range(37, 27, -1)) and whole["recovered"] is True


async def test_since_past_the_backlog_is_served_from_the_archive(client: redis.Redis, backlog_size: Callable[[int], None]) -> None:
    backlog_size(10)
    stream = "room:since"
    await publish_many(stream, 50)
    base = f"/api/streams/{stream}/messages"
    epoch = (await get(base)).json()["epoch"]
    # Dropped from the backlog and still queued: not every message is kept yet.
    waiting = (await get(f"{base}?since=5&epoch={epoch}")).json()
    assert waiting["recovered"] is False and waiting["messages"] == [] and waiting["seq"] == 50
    await drain(client)
    found = (await get(f"{base}?since=5&epoch={epoch}&limit=100")).json()
    assert found["recovered"] is True and found["epoch"] == epoch and found["seq"] == 50
    assert [m["seq"] for m in found["messages"]] == list(range(6, 51))  # archive 6..40, backlog 41..50
    limited = (await get(f"{base}?since=5&epoch={epoch}&limit=3")).json()
    assert [m["seq"] for m in limited["messages"]] == [6, 7, 8] and limited["recovered"] is True
    # What the archive cannot make up for stays refused, as before.
    stale = (await get(f"{base}?since=5&epoch=other")).json()
    assert stale["recovered"] is False and stale["messages"] == []
    ahead = (await get(f"{base}?since=60&epoch={epoch}")).json()
    assert ahead["recovered"] is False and ahead["messages"] == []


async def test_since_past_the_backlog_of_an_unarchived_kind_is_refused(backlog_size: Callable[[int], None]) -> None:
    backlog_size(5)
    for i in range(20):
        await apublish("live:short", {"i": i})
    epoch = (await get("/api/streams/live:short/messages")).json()["epoch"]
    page = (await get(f"/api/streams/live:short/messages?since=3&epoch={epoch}")).json()
    assert page["recovered"] is False and page["messages"] == []


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("before=x", "before"),
        ("before=1.5", "before"),
        ("before=-1", "before"),
        ("before=0", "before"),
        ("before=", "before"),
        ("before=10&limit=0", "limit"),
        ("before=10&limit=-3", "limit"),
        ("before=10&limit=many", "limit"),
        ("before=10&limit=4", "at most 3"),
        ("before=10&since=2&epoch={epoch}", "since and before"),
        ("before=10&epoch=nope", "epoch"),
        ("before=10&epoch=", "epoch"),
    ],
)
async def test_bad_paging_requests_are_refused_and_lose_nothing(query: str, says: str, settings: Any) -> None:
    settings.RT_HTTP_LIMIT_CAP = 3
    stream = "room:bad" + uuid.uuid4().hex[:6]
    await publish_many(stream, 5)
    base = f"/api/streams/{stream}/messages"
    epoch = (await get(base)).json()["epoch"]
    message = assert_bad_request(await get(f"{base}?{query.format(epoch=epoch)}"))
    assert says in message
    after = (await get(f"{base}?limit=3")).json()
    assert after["epoch"] == epoch and [m["seq"] for m in after["messages"]] == [3, 4, 5]
    assert (await runtime.current().backlog.position(stream)) == (epoch, 5)


async def test_paging_needs_the_same_rights_as_any_read() -> None:
    await apublish("user:5", {"text": "private"})
    forbidden = await get("/api/streams/user:5/messages?before=10")
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "forbidden"
    other = await get("/api/streams/user:5/messages?before=10", Authorization="Bearer " + mint(sub="6"))
    assert other.status_code == 403
    own = await get("/api/streams/user:5/messages?before=10", Authorization="Bearer " + mint(sub="5"))
    assert own.status_code == 200 and [m["data"] for m in own.json()["messages"]] == [{"text": "private"}]


async def test_openapi_documents_before() -> None:
    doc = (await get("/api/openapi.json")).json()
    params = {p["name"]: p for p in doc["paths"]["/api/streams/{stream}/messages"]["get"]["parameters"]}
    assert set(params) == {"stream", "since", "before", "epoch", "limit"}
    before = params["before"]
    assert before["required"] is False and "older" in before["description"]
    assert {"type": "integer", "minimum": 1, "maximum": 2**53 - 1} in before["schema"]["anyOf"]


@pytest.mark.slow
async def test_websocket_since_past_the_backlog_stays_unrecovered(start_server: Any) -> None:
    """The archive serves `since` over HTTP only: the socket keeps answering as before.
    A real server and a real archiver process, both on the end-to-end database."""
    server = start_server("uvicorn", RT_BACKLOG_SIZE="10", RT_PUBLISH_RATE="0", RT_BACKEND_PUBLISH_RATE="0")
    headers = {"Authorization": "Bearer " + mint(sub="1", name="alice")}
    async with httpx.AsyncClient(base_url=server.http, headers=headers) as http:
        for i in range(40):
            assert (await http.post("/api/streams/room:since/messages", json={"data": i})).status_code == 201
        archived = subprocess.run(
            [sys.executable, "manage.py", "run_archiver", "--once"],
            cwd=BASE_DIR, env=server.env, capture_output=True, text=True, timeout=120,
        )
        assert "archived 40 entries" in archived.stdout, archived.stderr
        epoch = (await http.get("/api/streams/room:since/messages?limit=1")).json()["epoch"]
        page = (await http.get(f"/api/streams/room:since/messages?since=5&epoch={epoch}")).json()
    assert page["recovered"] is True and [m["seq"] for m in page["messages"]] == list(range(6, 41))
    socket = await Client.connect(server.ws)
    try:
        reply = await socket.subscribe("room:since", since={"epoch": epoch, "seq": 5})
        assert reply["recovered"] is False and reply["seq"] == 40
        await socket.send({"type": "ping"})
        assert await socket.recv() == {"type": "pong"}  # and nothing was replayed before it
    finally:
        await socket.close()
