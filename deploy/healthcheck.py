"""Container health checks of docker-compose.yml: `python deploy/healthcheck.py web|archiver`.

web       GET /readyz on this container answers 200: the server serves and reaches Redis.
archiver  a worker of this container holds a live lease in Redis (realtime/archive.py): it
          runs, and its last heartbeat reached Redis within the visibility timeout.

Exit status 0 when healthy, 1 with one line saying why otherwise.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.request
from pathlib import Path


def web() -> str | None:
    port = os.environ.get("PORT", "8000")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3) as answer:
            return None if answer.status == 200 else f"/readyz answered {answer.status}"
    except OSError as exc:
        return f"/readyz: {exc}"


def archiver() -> str | None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import redis
    from django.conf import settings

    from realtime.archive import lease_key, workers_key
    from realtime.redis_clients import sync_client

    mine = socket.gethostname() + "-"
    client = sync_client(timeout=3)  # REDIS_URL, or with REDIS_SENTINELS the primary Sentinel names
    try:
        workers = [w for w in client.smembers(workers_key(settings.RT_KEY_PREFIX)) if w.startswith(mine)]
        if any(client.exists(lease_key(settings.RT_KEY_PREFIX, w)) for w in workers):
            return None
        return f"no live archive lease for a worker of {mine[:-1]}"
    except redis.RedisError as exc:
        return f"Redis: {exc}"
    finally:
        client.close()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from topology import choose

    choose()  # the entry point's choice of Redis topology: health checks skip it
    checks = {"web": web, "archiver": archiver}
    if len(sys.argv) != 2 or sys.argv[1] not in checks:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(checks)}")
    problem = checks[sys.argv[1]]()
    if problem:
        print(problem)
    sys.exit(1 if problem else 0)
