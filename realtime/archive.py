"""The archiver: a reliable Redis list queue from each bucket's archive queue into the database.

append.lua pushes every stored message of an archived kind onto its bucket's queue
(`LPUSH {prefix:B}:archive "<stream>\\n<frame>"`) in the same script as the backlog append.
A worker moves entries one at a time, oldest first (`LMOVE queue processing RIGHT LEFT`),
onto a processing list of its own in the same bucket, writes them in batches (one
transaction each, an idempotent insert on (stream, epoch, seq)), then removes them.

Guarantees: every queued message reaches the database at least once, and the unique key
makes that exactly one row. A worker that dies leaves its entries in its processing lists;
once its lease (a heartbeat key) has been silent for the visibility timeout, the next worker
puts them back on the queues. A message the database rejects `max_attempts` times goes to
the bucket's dead-letter list with its error and never holds up the messages behind it.
While the database is down nothing counts as a failure: the worker backs off and retries.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import redis
from django.db import InterfaceError, OperationalError, close_old_connections, transaction
from redis.exceptions import RedisError

from .names import archive_queue

log = logging.getLogger("realtime.archive")

#: Errors that mean "the database cannot be reached", not "this message is bad".
DB_DOWN: tuple[type[Exception], ...] = (OperationalError, InterfaceError)


@dataclass(frozen=True, slots=True)
class BucketKeys:
    """A bucket's archive keys: all share the bucket's hash tag, like its streams' keys."""

    queue: str  # list: entries, newest on the left
    dead: str  # list: JSON {entry, error, attempts, at}, newest on the left
    attempts: str  # hash: sha1(entry) -> failed writes so far

    def processing(self, worker_id: str) -> str:
        return f"{self.queue}:processing:{worker_id}"


def bucket_keys(prefix: str, bucket: int) -> BucketKeys:
    queue = archive_queue(prefix, bucket)
    return BucketKeys(queue=queue, dead=f"{queue}:dead", attempts=f"{queue}:attempts")


def workers_key(prefix: str) -> str:
    """Set of the worker ids that may own processing lists (live or awaiting recovery)."""
    return "{%s}:archive:workers" % prefix


def lease_key(prefix: str, worker_id: str) -> str:
    """A worker's heartbeat: it exists while the worker is alive (TTL: the visibility timeout)."""
    return "{%s}:archive:lease:%s" % (prefix, worker_id)


def digest(entry: str) -> str:
    return hashlib.sha1(entry.encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True, slots=True)
class Entry:
    """One queue entry taken by this worker, and the bucket it came from."""

    bucket: int
    raw: str


def parse_entry(raw: str) -> dict[str, Any]:
    """The model fields of one queue entry; ValueError/KeyError/TypeError when malformed."""
    stream, sep, text = raw.partition("\n")
    if not sep or not stream:
        raise ValueError("archive entry without a '<stream>\\n' line")
    frame = json.loads(text)
    if not isinstance(frame, dict):
        raise ValueError("archive entry is not a JSON object")
    sender = frame.get("sender")
    if sender is not None and not isinstance(sender, dict):
        raise ValueError("sender is neither null nor an object")
    return {
        "stream": stream,
        "epoch": str(frame["epoch"]),
        "seq": int(frame["seq"]),
        "ts": int(frame["ts"]),
        "data": frame.get("data"),
        "sender_id": None if sender is None else str(sender["id"]),
        "sender_name": "" if sender is None else str(sender.get("name") or ""),
    }


def write_entries(raws: Iterable[str]) -> int:
    """Insert the entries in one transaction; rows that exist already are kept as they are."""
    from .models import ArchivedMessage

    rows = [ArchivedMessage(**parse_entry(raw)) for raw in raws]
    with transaction.atomic():
        ArchivedMessage.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


@dataclass(frozen=True, slots=True)
class BucketDepth:
    bucket: int
    queued: int
    processing: int
    dead: int
    oldest_age: float | None  # seconds since the oldest queued message was published


def read_depths(client: redis.Redis, prefix: str, buckets: int) -> list[BucketDepth]:
    """Queue, processing and dead-letter depths per bucket, in two round trips."""
    # The client decodes replies (realtime.redis_clients); redis-py types them bytes | str.
    workers = sorted(cast(set[str], client.smembers(workers_key(prefix))))
    pipe = client.pipeline(transaction=False)
    for bucket in range(buckets):
        keys = bucket_keys(prefix, bucket)
        pipe.llen(keys.queue)
        pipe.llen(keys.dead)
        pipe.lindex(keys.queue, -1)
        for worker in workers:
            pipe.llen(keys.processing(worker))
    replies: list[Any] = pipe.execute()
    now_ms = time.time() * 1000
    depths = []
    step = 3 + len(workers)
    for bucket in range(buckets):
        queued, dead, oldest, *processing = replies[bucket * step : (bucket + 1) * step]
        age = None
        if oldest is not None:
            try:
                age = max(0.0, (now_ms - parse_entry(oldest)["ts"]) / 1000)
            except (ValueError, KeyError, TypeError):
                age = None
        depths.append(BucketDepth(bucket, int(queued), int(sum(processing)), int(dead), age))
    return depths


class Archiver:
    """One worker. `run()` loops until `stop()`; `drain()` archives what is queued, then returns.

    Buckets are polled in turn, starting one further each round so that none starves (one
    pipelined LLEN of every queue first says which hold entries); when all are empty the
    worker blocks on one of them with BLMOVE for `block` seconds.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str,
        buckets: int,
        batch_size: int = 200,
        visibility: float = 60.0,
        max_attempts: int = 5,
        block: float = 0.5,
        backoff_cap: float = 10.0,
        worker_id: str | None = None,
    ) -> None:
        self.redis = client
        self.prefix = prefix
        self.buckets = [bucket_keys(prefix, b) for b in range(buckets)]
        self.batch_size = batch_size
        self.visibility = visibility
        self.max_attempts = max_attempts
        self.block = block
        self.backoff_cap = backoff_cap
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.processing = [keys.processing(self.worker_id) for keys in self.buckets]
        self.lease = lease_key(prefix, self.worker_id)
        self.written = 0
        self.dead_lettered = 0
        self._stopping = threading.Event()
        self._next_bucket = 0
        self._lease_renewed = -float("inf")
        self._last_recovery = -float("inf")
        self._reclaim_own = True
        self._db_down_since: float | None = None
        self._db_delay = 0.2
        self._reported_at = time.monotonic()
        self._reported_written = 0

    # --- lifecycle -----------------------------------------------------------------

    def stop(self) -> None:
        """Ask the worker to finish the batch in hand and return from `run()`."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run(self) -> None:
        log.info(
            "archiver %s started: %d buckets, batches of %d, visibility %.1fs",
            self.worker_id, len(self.buckets), self.batch_size, self.visibility,
        )
        redis_down_since: float | None = None
        delay = 0.1
        while not self.stopping:
            try:
                self._housekeeping()
                if redis_down_since is not None:
                    log.warning("Redis is back after %.1fs", time.monotonic() - redis_down_since)
                    redis_down_since, delay = None, 0.1
                batch = self._fetch(block=True)
                if batch:
                    self._archive(batch)
                self._report()
            except RedisError as exc:
                if redis_down_since is None:
                    redis_down_since = time.monotonic()
                    log.warning("Redis unavailable (%s: %s); retrying with backoff", exc.__class__.__name__, exc)
                # Whatever this worker took is still in its processing lists: give it back.
                self._reclaim_own = True
                self._stopping.wait(delay)
                delay = min(delay * 2, self.backoff_cap)
        self._shutdown()

    def drain(self) -> int:
        """Archive everything queued now (recovering dead workers first); return how many
        entries were handled (written or dead-lettered). For tests and one-off commands."""
        handled = 0
        self._housekeeping()
        while True:
            batch = self._fetch(block=False)
            if not batch:
                return handled
            self._archive(batch)
            handled += len(batch)

    def _report(self, every: float = 60.0) -> None:
        """An INFO line at most once a minute while messages are being written."""
        now = time.monotonic()
        if now - self._reported_at >= every:
            if self.written != self._reported_written:
                log.info("archived %d messages in %.0fs (%d in all)", self.written - self._reported_written,
                         now - self._reported_at, self.written)
            self._reported_at, self._reported_written = now, self.written

    def _shutdown(self) -> None:
        try:
            self._requeue(self.worker_id)
            pipe = self.redis.pipeline(transaction=False)
            pipe.delete(self.lease)
            pipe.srem(workers_key(self.prefix), self.worker_id)
            pipe.execute()
        except RedisError as exc:
            log.warning("could not release the lease at exit (%s); it expires in %.0fs", exc, self.visibility)
        log.info("archiver %s stopped: %d written, %d dead-lettered", self.worker_id, self.written, self.dead_lettered)

    # --- leases and recovery -------------------------------------------------------

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if now - self._lease_renewed >= self.visibility / 4:
            self._renew_lease()
        if self._reclaim_own:
            self._requeue(self.worker_id)
            self._reclaim_own = False
        if now - self._last_recovery >= self.visibility / 2:
            # Called between batches: anything left in our own lists is a leftover too.
            self._requeue(self.worker_id)
            self.recover()
            self._last_recovery = now

    def _renew_lease(self) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(self.lease, json.dumps({"host": socket.gethostname(), "pid": os.getpid()}), px=int(self.visibility * 1000))
        pipe.sadd(workers_key(self.prefix), self.worker_id)
        pipe.execute()
        self._lease_renewed = time.monotonic()

    def recover(self) -> int:
        """Put the entries of workers whose lease expired back on the queues; return how many."""
        moved = 0
        for worker in cast(set[str], self.redis.smembers(workers_key(self.prefix))):
            if worker == self.worker_id or self.redis.exists(lease_key(self.prefix, worker)):
                continue
            self.redis.srem(workers_key(self.prefix), worker)
            count = self._requeue(worker)
            if self.redis.exists(lease_key(self.prefix, worker)):  # it came back meanwhile
                self.redis.sadd(workers_key(self.prefix), worker)
            if count:
                log.warning("re-queued %d entries of worker %s (no heartbeat for %.0fs)", count, worker, self.visibility)
            moved += count
        return moved

    def _requeue(self, worker: str) -> int:
        """Move a worker's processing entries back to the oldest end of their queues, in order."""
        moved = 0
        sources = [keys.processing(worker) for keys in self.buckets]
        for bucket in self._holding(sources):
            source, queue = sources[bucket], self.buckets[bucket].queue
            while self.redis.lmove(source, queue, "LEFT", "RIGHT") is not None:
                moved += 1
        return moved

    def _holding(self, lists: list[str]) -> list[int]:
        """The indexes of the lists that hold entries, in one pipelined round trip (a
        cluster has a thousand buckets: asking each one in turn would take a while)."""
        pipe = self.redis.pipeline(transaction=False)
        for key in lists:
            pipe.llen(key)
        return [i for i, length in enumerate(pipe.execute()) if length]

    # --- taking entries ------------------------------------------------------------

    def _fetch(self, *, block: bool) -> list[Entry]:
        """Up to `batch_size` entries, moved one at a time (pipelined) onto our processing lists."""
        batch: list[Entry] = []
        count = len(self.buckets)
        start = self._next_bucket
        self._next_bucket = (start + 1) % count
        holding = set(self._holding([keys.queue for keys in self.buckets]))
        for step in range(count):
            bucket = (start + step) % count
            if bucket not in holding:
                continue
            want = self.batch_size - len(batch)
            if want <= 0:
                break
            batch.extend(self._take(bucket, want))
        if batch or not block or self.stopping:
            return batch
        keys = self.buckets[start]
        # Redis 6 takes a fractional timeout; the stub says int.
        raw = self.redis.blmove(keys.queue, self.processing[start], self.block, "RIGHT", "LEFT")  # type: ignore[arg-type]
        if raw is None:
            return []
        return [Entry(start, cast(str, raw)), *self._take(start, self.batch_size - 1)]

    def _take(self, bucket: int, want: int) -> list[Entry]:
        keys, processing = self.buckets[bucket], self.processing[bucket]
        taken: list[Entry] = []
        chunk = 8
        while len(taken) < want:
            n = min(chunk, want - len(taken))
            pipe = self.redis.pipeline(transaction=False)
            for _ in range(n):
                pipe.lmove(keys.queue, processing, "RIGHT", "LEFT")
            replies = [r for r in pipe.execute() if r is not None]
            taken.extend(Entry(bucket, cast(str, r)) for r in replies)
            if len(replies) < n:
                break
            chunk = min(chunk * 4, 256)
        return taken

    # --- writing -------------------------------------------------------------------

    def _archive(self, batch: list[Entry]) -> None:
        """Write the batch and acknowledge it; on a rejected batch, write one by one."""
        while True:
            try:
                close_old_connections()
                write_entries(e.raw for e in batch)
            except DB_DOWN as exc:
                if not self._database_down(exc):  # stopping: give the batch back
                    self._requeue(self.worker_id)
                    return
                continue
            except Exception as exc:  # noqa: BLE001 - some entry is rejected: find which
                log.info("batch of %d rejected (%s: %s); writing one by one", len(batch), exc.__class__.__name__, exc)
                self._one_by_one(batch)
                return
            self._database_up()
            self._ack(batch)
            self.written += len(batch)
            log.debug("archived %d messages", len(batch))
            return

    def _one_by_one(self, batch: list[Entry]) -> None:
        done: list[Entry] = []
        for entry in batch:
            while True:
                try:
                    write_entries([entry.raw])
                except DB_DOWN as exc:
                    if not self._database_down(exc):
                        self._ack(done)
                        self._requeue(self.worker_id)
                        return
                    continue
                except Exception as exc:  # noqa: BLE001 - this entry is the poison
                    self._failed(entry, exc)
                else:
                    done.append(entry)
                break
        self._database_up()
        self._ack(done)
        self.written += len(done)

    def _ack(self, entries: list[Entry]) -> None:
        """Remove written entries from our processing lists and forget their failure counts."""
        if not entries:
            return
        pipe = self.redis.pipeline(transaction=False)
        for entry in entries:
            pipe.lrem(self.processing[entry.bucket], -1, entry.raw)
            pipe.hdel(self.buckets[entry.bucket].attempts, digest(entry.raw))
        pipe.execute()

    def _failed(self, entry: Entry, exc: Exception) -> None:
        """Count a failed write; re-queue the entry at the back, or dead-letter it at the limit."""
        keys, processing = self.buckets[entry.bucket], self.processing[entry.bucket]
        field = digest(entry.raw)
        attempts = int(self.redis.hincrby(keys.attempts, field, 1))
        error = f"{exc.__class__.__name__}: {exc}"[:1000]
        pipe = self.redis.pipeline(transaction=True)
        pipe.lrem(processing, -1, entry.raw)
        if attempts >= self.max_attempts:
            record = {"entry": entry.raw, "error": error, "attempts": attempts, "at": int(time.time() * 1000)}
            pipe.lpush(keys.dead, json.dumps(record))
            pipe.hdel(keys.attempts, field)
        else:
            pipe.lpush(keys.queue, entry.raw)  # the newest end: the messages behind it go first
        pipe.execute()
        if attempts >= self.max_attempts:
            self.dead_lettered += 1
            log.error("dead-lettered an entry of bucket %d after %d failed writes: %s", entry.bucket, attempts, error)
        else:
            log.warning("write of an entry failed (%d/%d): %s; re-queued", attempts, self.max_attempts, error)

    def _database_down(self, exc: Exception) -> bool:
        """Log, back off and keep the lease alive; False when asked to stop meanwhile."""
        now = time.monotonic()
        if self._db_down_since is None:
            self._db_down_since = now
            log.warning("database unavailable (%s: %s); backing off, nothing is lost", exc.__class__.__name__, exc)
        else:
            log.debug("database still unavailable: %s", exc)
        try:
            close_old_connections()
            from django.db import connection

            connection.close()
        except Exception:  # noqa: BLE001 - closing a broken connection may fail too
            pass
        self._stopping.wait(self._db_delay)
        self._db_delay = min(self._db_delay * 2, self.backoff_cap)
        if time.monotonic() - self._lease_renewed >= self.visibility / 4:
            self._renew_lease()
        return not self.stopping

    def _database_up(self) -> None:
        if self._db_down_since is not None:
            log.warning("database is back after %.1fs", time.monotonic() - self._db_down_since)
            self._db_down_since = None
        self._db_delay = 0.2
