"""`manage.py run_archiver` as a real process against the test Redis and a SQLite file:
killed mid-batch, Redis restarted under it, the database gone for a while, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings

from config.embedded_redis import EmbeddedRedis
from realtime.archive import bucket_keys, lease_key, workers_key
from realtime.publishing import Sender, apublish
from realtime.redis_clients import sync_client

BASE_DIR = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


class ArchiverProcess:
    """One `manage.py run_archiver` with its log in a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "run_archiver"], cwd=BASE_DIR, env=self.env, stdout=out, stderr=out
            )

    def signal(self, sig: int) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(30)
        self.process = None
        return code

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def worker_id(self) -> str | None:
        """The id the running process logged at start, once it has (None before)."""
        ids = re.findall(r"archiver (\S+) started:", self.output())
        return ids[-1] if len(ids) == self.starts else None


@pytest.fixture
def archiver_env(server_env: dict[str, str]) -> dict[str, str]:
    return dict(server_env, RT_ARCHIVE_VISIBILITY="2", RT_ARCHIVE_BATCH="50", LOG_LEVEL="INFO")


@pytest.fixture
def archivers(tmp_path: Path) -> Iterator[list[ArchiverProcess]]:
    started: list[ArchiverProcess] = []
    yield started
    for proc in started:
        if proc.process is not None and proc.process.poll() is None:
            proc.process.kill()
            proc.process.wait()


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    c = sync_client()
    yield c
    c.close()


def rows(db: Path, pattern: str) -> list[tuple[str, str, int]]:
    with sqlite3.connect(db, timeout=30) as conn:
        return conn.execute(
            "SELECT stream, epoch, seq FROM realtime_archivedmessage WHERE stream LIKE ?", (pattern,)
        ).fetchall()


def count(db: Path, pattern: str) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=30) as conn:
        return int(
            conn.execute("SELECT COUNT(*) FROM realtime_archivedmessage WHERE stream LIKE ?", (pattern,)).fetchone()[0]
        )


def depth(client: redis.Redis, kind: str) -> int:
    """Entries in every queue ("") or every processing list ("processing") of this test."""
    prefix = settings.RT_KEY_PREFIX
    total = 0
    for bucket in range(settings.RT_BUCKETS):
        keys = bucket_keys(prefix, bucket)
        if kind == "":
            total += int(client.llen(keys.queue))
        else:
            total += sum(int(client.llen(k)) for k in client.keys(keys.processing("*")))
    return total


async def wait_for(condition: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.05)


async def publish_racing(streams: list[str], total: int, publishers: int = 4) -> set[tuple[str, str, int]]:
    """`total` messages from `publishers` concurrent tasks over `streams`; returns what was stored."""
    stored: set[tuple[str, str, int]] = set()

    async def publisher(n: int) -> None:
        rng = random.Random(n)
        sender = Sender(key=f"p{n}", id=str(n), name=f"publisher {n}")
        for i in range(total // publishers):
            published = await apublish(rng.choice(streams), {"p": n, "i": i}, sender)
            stored.add((published.stream, published.epoch, published.seq))
            if i % 50 == 0:
                await asyncio.sleep(0)

    await asyncio.gather(*(publisher(n) for n in range(publishers)))
    return stored


def held(client: redis.Redis, worker_id: str) -> int:
    keys = [bucket_keys(settings.RT_KEY_PREFIX, b).processing(worker_id) for b in range(settings.RT_BUCKETS)]
    return sum(int(client.llen(k)) for k in keys)


async def kill_holding(proc: ArchiverProcess, client: redis.Redis, db: Path, pattern: str, after: int) -> int:
    """Once `after` rows are in, SIGKILL the worker while it holds entries; restart it.
    Returns how many entries the killed worker left in its processing lists."""
    await wait_for(lambda: count(db, pattern) >= after, f"{after} archived rows")
    while True:
        await wait_for(lambda: proc.worker_id() is not None, "the worker to start")
        worker_id = proc.worker_id()
        assert worker_id is not None
        await wait_for(lambda w=worker_id: held(client, w) > 0, "a batch in hand")
        assert proc.signal(signal.SIGKILL) == -signal.SIGKILL
        stranded = held(client, worker_id)
        proc.start()
        if stranded:  # else it had just finished that batch: try again
            return stranded


async def test_killed_twice_while_4_publishers_race_every_message_archived_once(
    archiver_env: dict[str, str], archivers: list[ArchiverProcess], client: redis.Redis, e2e_data: Path, tmp_path: Path
) -> None:
    db = e2e_data / "db.sqlite3"
    tag = settings.RT_KEY_PREFIX
    streams = [f"room:{tag}-{i}" for i in range(6)] + [f"user:{tag}{i}" for i in range(3)]
    pattern = f"%{tag}%"
    proc = ArchiverProcess(archiver_env, tmp_path / "archiver.log")
    archivers.append(proc)
    proc.start()

    publishing = asyncio.create_task(publish_racing(streams, 5000))
    stranded = [await kill_holding(proc, client, db, pattern, after=600)]
    # The killed worker's lease is still alive: its entries wait for the visibility timeout.
    stranded.append(await kill_holding(proc, client, db, pattern, after=2000))
    stored = await publishing
    assert len(stored) == 5000

    await wait_for(lambda: count(db, pattern) >= 5000 and depth(client, "") == 0 and depth(client, "processing") == 0,
                   "the queues to drain")
    archived = rows(db, pattern)
    assert len(archived) == 5000 and set(archived) == stored  # each once, with its seq and epoch
    for stream in streams:
        seqs = sorted(seq for s, _, seq in archived if s == stream)
        assert seqs == list(range(1, len(seqs) + 1))

    # SIGTERM: the batch in hand is finished, the lease given back, exit code 0.
    assert proc.signal(signal.SIGTERM) == 0
    log = proc.output()
    ids = re.findall(r"archiver (\S+) started:", log)
    assert len(ids) == proc.starts >= 3 and all(stranded)
    assert log.count("re-queued") >= 2 and f"archiver {ids[-1]} stopped:" in log
    assert client.exists(lease_key(tag, ids[-1])) == 0 and ids[-1] not in client.smembers(workers_key(tag))


async def test_redis_restarted_mid_batch_loses_nothing(
    archiver_env: dict[str, str], archivers: list[ArchiverProcess], client: redis.Redis, e2e_data: Path,
    tmp_path: Path, redis_server: EmbeddedRedis
) -> None:
    db = e2e_data / "db.sqlite3"
    tag = settings.RT_KEY_PREFIX
    streams = [f"room:{tag}-r{i}" for i in range(4)]
    pattern = f"%{tag}-r%"
    stored = await publish_racing(streams, 1600)
    proc = ArchiverProcess(dict(archiver_env, RT_ARCHIVE_BATCH="20"), tmp_path / "archiver.log")
    archivers.append(proc)
    proc.start()

    await wait_for(lambda: count(db, pattern) >= 100, "the first batches")
    await wait_for(lambda: depth(client, "processing") > 0 or depth(client, "") == 0, "a batch in hand")
    redis_server.restart(keep_data=True)
    stored |= await publish_racing(streams, 400)  # published after the restart

    await wait_for(lambda: count(db, pattern) >= 2000 and depth(client, "") == 0 and depth(client, "processing") == 0,
                   "the queues to drain")
    archived = rows(db, pattern)
    assert len(archived) == 2000 and set(archived) == stored
    assert proc.process is not None and proc.process.poll() is None  # it rode out the restart
    assert proc.signal(signal.SIGTERM) == 0


async def test_database_unavailable_worker_backs_off_and_loses_nothing(
    archiver_env: dict[str, str], archivers: list[ArchiverProcess], client: redis.Redis, e2e_data: Path, tmp_path: Path
) -> None:
    later = tmp_path / "later"  # does not exist yet: SQLite cannot open the database
    db = later / "db.sqlite3"
    env = dict(archiver_env, DATABASE_URL=f"sqlite:///{db}", LOG_LEVEL="DEBUG")
    proc = ArchiverProcess(env, tmp_path / "archiver.log")
    archivers.append(proc)
    proc.start()
    tag = settings.RT_KEY_PREFIX
    stored = await publish_racing([f"room:{tag}-d{i}" for i in range(3)], 400)

    await wait_for(lambda: proc.output().count("database still unavailable") >= 3, "the worker to back off")
    assert "database unavailable (OperationalError" in proc.output()
    keys = [bucket_keys(tag, b) for b in range(settings.RT_BUCKETS)]
    assert depth(client, "") + depth(client, "processing") == 400  # all still queued or in hand
    assert sum(int(client.llen(k.dead)) + int(client.hlen(k.attempts)) for k in keys) == 0  # no failure counted

    stage = tmp_path / "stage"
    stage.mkdir()
    with sqlite3.connect(e2e_data / "db.sqlite3") as source, sqlite3.connect(stage / "db.sqlite3") as target:
        source.backup(target)  # a migrated database appears at the worker's path, all at once
    os.rename(stage, later)

    pattern = f"%{tag}-d%"
    await wait_for(lambda: count(db, pattern) >= 400 and depth(client, "") == 0 and depth(client, "processing") == 0,
                   "the queues to drain")
    assert set(rows(db, pattern)) == stored
    assert "database is back" in proc.output()
    assert proc.signal(signal.SIGTERM) == 0
