"""`realtime.publish` from a plain sync loop, the way a view or a job calls it.

    DJANGO_SETTINGS_MODULE=config.settings REDIS_URL=... python -m bench.sync_publish SECONDS MAX_MESSAGES

Prints one JSON line: messages/s and whether every seq came back exactly once, in order.
"""

from __future__ import annotations

import json
import sys
import time

import django


def main() -> None:
    seconds, limit = float(sys.argv[1]), int(sys.argv[2])
    django.setup()
    from realtime.publishing import publish

    stream = f"live:sync-{int(time.time() * 1000)}"
    seqs: list[int] = []
    publish(stream, {"warm": True})  # the loop thread and its connections: not timed
    started = time.perf_counter()
    deadline = started + seconds
    while len(seqs) < limit and time.perf_counter() < deadline:
        seqs.append(publish(stream, {"i": len(seqs), "t": time.time() * 1000}).seq)
    elapsed = time.perf_counter() - started
    valid = seqs == list(range(2, 2 + len(seqs)))
    print(json.dumps({"messages": len(seqs), "seconds": elapsed, "messages_per_s": len(seqs) / elapsed, "valid": valid}))


if __name__ == "__main__":
    main()
