"""`manage.py archiver_status`: queue, processing and dead-letter depths per bucket and in total."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from realtime.archive import lease_key, read_depths, workers_key
from realtime.redis_clients import sync_client


def _age(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}s"


class Command(BaseCommand):
    help = "Print the archive queue depths and the age of the oldest waiting message."

    def handle(self, *args: Any, **options: Any) -> None:
        client = sync_client()
        prefix = settings.RT_KEY_PREFIX
        try:
            depths = read_depths(client, prefix, settings.RT_BUCKETS)
            workers = sorted(str(w) for w in client.smembers(workers_key(prefix)))
            leases = [client.pttl(lease_key(prefix, w)) for w in workers]
        finally:
            client.close()
        out = self.stdout
        out.write(f"{'bucket':>6} {'queued':>8} {'processing':>10} {'dead':>6} {'oldest':>9}")
        for d in depths:
            if d.queued or d.processing or d.dead:
                out.write(f"{d.bucket:>6} {d.queued:>8} {d.processing:>10} {d.dead:>6} {_age(d.oldest_age):>9}")
        ages = [d.oldest_age for d in depths if d.oldest_age is not None]
        out.write(
            f"{'total':>6} {sum(d.queued for d in depths):>8} {sum(d.processing for d in depths):>10} "
            f"{sum(d.dead for d in depths):>6} {_age(max(ages) if ages else None):>9}"
        )
        for worker, ttl in zip(workers, leases, strict=True):
            state = f"lease {int(ttl) / 1000:.1f}s" if int(ttl) > 0 else "lease expired (awaiting recovery)"
            out.write(f"worker {worker}: {state}")
