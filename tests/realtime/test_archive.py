"""The archive queue into the database, in process: real Redis, the test database.

The worker's database work is sync; async tests run it in Django's sync thread, the same
thread that serves the async ORM calls of realtime/history.py.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.management import call_command
from django.test import AsyncClient
from prometheus_client import generate_latest

from realtime import runtime
from realtime.archive import Archiver, bucket_keys, lease_key, workers_key
from realtime.history import older_page
from realtime.management.commands.archive_retention import delete_older_than
from realtime.models import ArchivedMessage
from realtime.names import bucket_of
from realtime.publishing import Sender, apublish
from realtime.redis_clients import sync_client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    c = sync_client()
    yield c
    c.close()


def worker(client: redis.Redis, **options: float) -> Archiver:
    return Archiver(client, prefix=settings.RT_KEY_PREFIX, buckets=settings.RT_BUCKETS, **options)  # type: ignore[arg-type]


async def read_since(stream: str, since: int, epoch: str, limit: int) -> dict[str, Any]:
    """The HTTP read after a position, which serves what the backlog dropped from the archive."""
    response = await AsyncClient().get(f"/api/streams/{stream}/messages", {"since": since, "epoch": epoch, "limit": limit})
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def all_lists_empty(client: redis.Redis) -> bool:
    names = client.keys("{%s:*}:archive*" % settings.RT_KEY_PREFIX)
    return all(client.llen(n) == 0 for n in names if client.type(n) == "list" and not n.endswith(":dead"))


async def test_room_and_user_messages_are_archived_once_live_ones_not(client: redis.Redis) -> None:
    alice = Sender(key="u1", id="1", name="Alice")
    for i in range(30):
        await apublish("room:lobby", {"i": i}, alice)
        await apublish("user:7", {"n": i})
        await apublish("live:scores", {"x": i})
    await apublish("room:lobby", None, alice)  # JSON null data is kept as null
    archiver = worker(client, batch_size=7)
    assert await sync_to_async(archiver.drain)() == 61
    # The same entries queued again (a worker that died after its insert): still one row each.
    keys = bucket_keys(settings.RT_KEY_PREFIX, bucket_of("room:lobby", settings.RT_BUCKETS))
    again = await runtime.current().backlog.read("room:lobby")
    for frame in again.frames[:10]:
        client.lpush(keys.queue, "room:lobby\n" + frame)
    assert await sync_to_async(archiver.drain)() == 10

    rows = [m async for m in ArchivedMessage.objects.filter(stream="room:lobby").order_by("seq")]
    assert [r.seq for r in rows] == list(range(1, 32))
    assert rows[0].data == {"i": 0} and rows[0].sender_id == "1" and rows[0].sender_name == "Alice"
    assert rows[-1].data is None
    assert rows[0].epoch == again.epoch and rows[0].ts > 0
    user_rows = [m async for m in ArchivedMessage.objects.filter(stream="user:7").order_by("seq")]
    assert [r.seq for r in user_rows] == list(range(1, 31)) and user_rows[0].sender_id is None
    assert await ArchivedMessage.objects.filter(stream="live:scores").acount() == 0
    assert all_lists_empty(client)


async def test_poison_entries_go_to_dead_letter_after_five_tries_and_block_nothing(client: redis.Redis) -> None:
    stream = "room:poison"
    keys = bucket_keys(settings.RT_KEY_PREFIX, bucket_of(stream, settings.RT_BUCKETS))
    for i in range(10):
        await apublish(stream, {"i": i})
    # Oldest entries are on the right: these two sit in front of the ten messages behind them.
    bad_json = stream + "\n{not json"
    frame = (await runtime.current().backlog.read(stream, first=1, last=1)).frames[0]
    too_big = stream + "\n" + frame.replace('"seq":1,', '"seq":%d,' % (2**70))  # the insert rejects it
    client.rpush(keys.queue, bad_json, too_big)
    for i in range(10, 15):
        await apublish(stream, {"i": i})

    archiver = worker(client, batch_size=4, max_attempts=5)
    await sync_to_async(archiver.drain)()

    assert await ArchivedMessage.objects.filter(stream=stream).acount() == 15
    dead = [json.loads(d) for d in client.lrange(keys.dead, 0, -1)]
    assert sorted(d["entry"] for d in dead) == sorted([bad_json, too_big])
    assert all(d["attempts"] == 5 and d["error"] for d in dead)
    assert any("int too large" in d["error"] or "Overflow" in d["error"] for d in dead)
    assert archiver.dead_lettered == 2
    assert client.exists(keys.attempts) == 0  # counts are forgotten once settled
    assert client.llen(keys.queue) == 0 and all_lists_empty(client)


async def test_a_dead_workers_entries_are_requeued_after_its_lease_expires(client: redis.Redis) -> None:
    for i in range(40):
        await apublish(f"room:r{i % 5}", {"i": i})
    dead = worker(client, batch_size=25, visibility=0.5)
    dead._housekeeping()  # lease taken, as a running worker does
    taken = dead._fetch(block=False)  # ... then it dies holding these
    assert len(taken) == 25
    stranded = sum(client.llen(k.processing(dead.worker_id)) for k in dead.buckets)
    assert stranded == 25

    survivor = worker(client, batch_size=10, visibility=30)
    survivor._housekeeping()
    assert survivor.recover() == 0  # the lease is still alive: nothing is taken from it
    while client.exists(lease_key(settings.RT_KEY_PREFIX, dead.worker_id)):
        time.sleep(0.05)
    assert survivor.recover() == 25
    await sync_to_async(survivor.drain)()

    assert await ArchivedMessage.objects.filter(stream__startswith="room:r").acount() == 40
    assert sum(client.llen(k.processing(dead.worker_id)) for k in dead.buckets) == 0
    assert dead.worker_id not in client.smembers(workers_key(settings.RT_KEY_PREFIX))
    assert all_lists_empty(client)


async def test_paging_before_walks_backlog_then_archive_without_hole_or_duplicate(client: redis.Redis, backlog_size: Callable[[int], None]) -> None:
    backlog_size(500)
    stream = "room:long"
    for i in range(1, 3001):
        await apublish(stream, {"i": i})
    await sync_to_async(worker(client, batch_size=500).drain)()
    kept = await runtime.current().backlog.read(stream)
    assert kept.first == 2501  # the backlog holds the newest 500 only

    epoch, seen, before = kept.epoch, [], None
    while True:
        got = await older_page(stream, before, epoch if before else None, 128)
        page = got.messages
        assert got.epoch == epoch and got.known and got.contiguous
        if not page:
            break
        seen.extend(page)
        before = page[-1]["seq"]
    assert [m["seq"] for m in seen] == list(range(3000, 0, -1))
    assert all(m["data"] == {"i": m["seq"]} and m["epoch"] == epoch and m["stream"] == stream for m in seen)
    assert all("type" not in m for m in seen)

    # A page that straddles the boundary, and one entirely in the archive.
    straddle = (await older_page(stream, 2510, epoch, 20)).messages
    assert [m["seq"] for m in straddle] == list(range(2509, 2489, -1))
    deep = (await older_page(stream, 11, epoch, 100)).messages
    assert [m["seq"] for m in deep] == list(range(10, 0, -1))
    # An unknown (older) epoch is served from the archive alone: here, nothing.
    gone = await older_page(stream, None, "gone", 10)
    assert (gone.epoch, gone.messages, gone.known) == ("gone", [], False)

    # `since` past the backlog: the archive fills what the backlog dropped.
    found = await read_since(stream, 2450, epoch, 100)
    assert found["recovered"] and found["epoch"] == epoch and found["seq"] == 3000
    assert [m["seq"] for m in found["messages"]] == list(range(2451, 2551))
    assert all(m["data"] == {"i": m["seq"]} and "type" not in m for m in found["messages"])
    early = await read_since(stream, 0, epoch, 50)
    assert [m["seq"] for m in early["messages"]] == list(range(1, 51)) and early["recovered"]
    tail = await read_since(stream, 2990, epoch, 100)
    assert [m["seq"] for m in tail["messages"]] == list(range(2991, 3001)) and tail["recovered"]
    stale = await read_since(stream, 10, "other-epoch", 100)
    assert not stale["recovered"] and stale["messages"] == []


async def test_a_message_dropped_from_the_backlog_and_not_yet_archived_is_not_recovered(client: redis.Redis, backlog_size: Callable[[int], None]) -> None:
    backlog_size(5)
    for i in range(1, 21):
        await apublish("room:lag", {"i": i})
    epoch = (await runtime.current().backlog.read("room:lag")).epoch
    before = await read_since("room:lag", 3, epoch, 100)
    assert not before["recovered"] and before["messages"] == []  # seqs 4..15 are queued, not archived yet
    await sync_to_async(worker(client).drain)()
    after = await read_since("room:lag", 3, epoch, 100)
    assert after["recovered"] and [m["seq"] for m in after["messages"]] == list(range(4, 21))


def test_retention_deletes_by_kind_and_age() -> None:
    now = int(time.time() * 1000)
    day = 86_400_000
    rows = [
        ArchivedMessage(stream="room:a", epoch="e", seq=1, ts=now - 400 * day, data=1),
        ArchivedMessage(stream="room:a", epoch="e", seq=2, ts=now - 100 * day, data=2),
        ArchivedMessage(stream="user:1", epoch="e", seq=1, ts=now - 100 * day, data=3),
        ArchivedMessage(stream="user:1", epoch="e", seq=2, ts=now - 10 * day, data=4),
    ]
    ArchivedMessage.objects.bulk_create(rows)
    out = io.StringIO()
    call_command("archive_retention", "--dry-run", stdout=out)
    assert "room: 1 messages" in out.getvalue() and "user: 1 messages" in out.getvalue()
    assert ArchivedMessage.objects.count() == 4
    call_command("archive_retention", stdout=io.StringIO())
    assert sorted(ArchivedMessage.objects.values_list("stream", "seq")) == [("room:a", 2), ("user:1", 2)]
    assert delete_older_than("room", 50, now_ms=now) == 1


def test_status_and_metrics_show_queue_processing_and_dead_depths(client: redis.Redis) -> None:
    prefix = settings.RT_KEY_PREFIX
    keys = bucket_keys(prefix, 3)
    frame = '{"type":"message","stream":"room:s","seq":%d,"epoch":"e","ts":%d,"data":1,"sender":null}'
    old = int(time.time() * 1000) - 90_000
    client.lpush(keys.queue, *("room:s\n" + frame % (i, old + i) for i in range(1, 6)))
    client.lpush(keys.dead, json.dumps({"entry": "x", "error": "boom", "attempts": 5, "at": old}))
    holder = worker(client, batch_size=2)
    holder._housekeeping()
    assert len(holder._fetch(block=False)) == 2

    out = io.StringIO()
    call_command("archiver_status", stdout=out)
    lines = out.getvalue().splitlines()
    bucket_line = next(line for line in lines if line.split()[0] == "3")
    assert bucket_line.split()[1:4] == ["3", "2", "1"]
    assert float(bucket_line.split()[4].rstrip("s")) >= 89
    total = next(line for line in lines if line.startswith(" total"))
    assert total.split()[1:4] == ["3", "2", "1"]
    assert any(holder.worker_id in line and "lease" in line for line in lines)

    from realtime import metrics

    metrics.ARCHIVE_DEPTHS._at = -1e9  # read now, not from the 5 s cache
    text = generate_latest().decode()
    assert "rt_archive_queued 3.0" in text and "rt_archive_processing 2.0" in text and "rt_archive_dead 1.0" in text
    holder._shutdown()  # a clean stop gives its entries back
    assert client.llen(keys.queue) == 5
