"""`realtime.publish` from a plain sync loop, the way a view or a job calls it, one call
per message; then `realtime.publish_many`, BATCH messages per call (pipelined: one Redis
round trip per batch).

    DJANGO_SETTINGS_MODULE=config.settings REDIS_URL=... python -m bench.sync_publish SECONDS MAX_MESSAGES [BATCH]

Prints one JSON line: messages/s of each way, and whether every seq came back exactly
once, in order.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

import django


def timed(seconds: float, limit: int, publish_some: Callable[[int], list[int]]) -> tuple[list[int], float]:
    seqs: list[int] = []
    started = time.perf_counter()
    deadline = started + seconds
    while len(seqs) < limit and time.perf_counter() < deadline:
        seqs.extend(publish_some(len(seqs)))
    return seqs, time.perf_counter() - started


def main() -> None:
    seconds, limit = float(sys.argv[1]), int(sys.argv[2])
    batch = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    django.setup()
    from realtime.publishing import publish, publish_many

    stamp = int(time.time() * 1000)
    one, many = f"live:sync-{stamp}", f"live:sync-many-{stamp}"
    publish(one, {"warm": True})  # the loop thread and its connections: not timed
    publish_many([(many, {"warm": True})])
    seqs, elapsed = timed(seconds, limit, lambda n: [publish(one, {"i": n, "t": time.time() * 1000}).seq])
    batched, batched_elapsed = timed(seconds, limit, lambda n: [
        p.seq for p in publish_many([(many, {"i": n + k, "t": time.time() * 1000}) for k in range(batch)])
    ])
    print(json.dumps({
        "messages": len(seqs), "seconds": elapsed, "messages_per_s": len(seqs) / elapsed,
        "valid": seqs == list(range(2, 2 + len(seqs))),
        "batch": batch, "batched_messages": len(batched), "batched_messages_per_s": len(batched) / batched_elapsed,
        "batched_valid": batched == list(range(2, 2 + len(batched))),
    }))


if __name__ == "__main__":
    main()
