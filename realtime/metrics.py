"""Prometheus metrics of this process (served at `/metrics`; each process serves its own)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

CONNECTIONS = Gauge("rt_connections", "Open WebSocket connections")
SUBSCRIPTIONS = Gauge("rt_subscriptions", "Active stream subscriptions")
HUB_STREAMS = Gauge("rt_hub_streams", "Streams this process's hub has joined")
PUBLISHED = Counter("rt_messages_published_total", "Messages stored and fanned out", ["kind"])
DELIVERED = Counter("rt_messages_delivered_total", "Message frames handed to sockets")
FRAMES_BUILT = Counter("rt_frames_built_total", "Frame bytes built once and shared by the sockets of a process")
REPLAYED = Counter("rt_messages_replayed_total", "Messages sent from the backlog on subscribe")
HOLES_FILLED = Counter("rt_holes_filled_total", "Messages the hub read from the backlog to fill a hole")
RECOVERIES_REFUSED = Counter("rt_recoveries_refused_total", "Subscriptions answered recovered=false")
ERRORS = Counter("rt_errors_total", "Error frames and responses sent", ["code"])
SUBSCRIPTIONS_REPAIRED = Counter("rt_layer_subscriptions_repaired_total", "Silent pub/sub subscriptions reconnected")
TAILS_LOST = Counter("rt_tails_lost_total", "Streams moved to a new epoch because Redis lost their tail")
SLOW_CLOSED = Counter("rt_slow_consumers_closed_total", "Connections closed for falling behind")
PUBLISH_LATENCY = Histogram(
    "rt_publish_seconds",
    "Time to store and fan out one publish",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
REDIS_UP = Gauge("rt_redis_up", "1 when this process last reached Redis, 0 when it failed")


class ArchiveDepthCollector:
    """Archive queue depths, read from Redis when scraped (at most every 5 s; realtime/archive.py).

    The read is blocking: collect() must run off the event loop (health.metrics_view is sync)."""

    _every = 5.0

    def __init__(self) -> None:
        self._at = -self._every
        self._families: list[Any] = []
        self._client: Any = None  # one sync client for every scrape, made on the first
        self._url = ""

    def describe(self) -> list[Any]:
        return []  # computed lazily: no Redis round trip at registration

    def collect(self) -> Iterator[Any]:
        now = time.monotonic()
        if now - self._at >= self._every:
            self._at = now
            self._families = self._read()
        yield from self._families

    def _redis(self) -> Any:
        """The scrape client, made again only if REDIS_URL changed (tests switch servers)."""
        from django.conf import settings

        from .redis_clients import sync_client

        if self._client is None or self._url != settings.REDIS_URL:
            if self._client is not None:
                self._client.close()
            self._client = sync_client(timeout=0.5)
            self._url = settings.REDIS_URL
        return self._client

    def _read(self) -> list[Any]:
        from django.conf import settings

        from .archive import read_depths

        try:
            depths = read_depths(self._redis(), settings.RT_KEY_PREFIX, settings.RT_BUCKETS)
        except Exception:  # noqa: BLE001 - a scrape must not fail because Redis is down
            return []
        ages = [d.oldest_age for d in depths if d.oldest_age is not None]
        values = {
            "rt_archive_queued": ("Messages waiting in the archive queues", sum(d.queued for d in depths)),
            "rt_archive_processing": ("Messages taken by archive workers, not yet written", sum(d.processing for d in depths)),
            "rt_archive_dead": ("Messages in the archive dead-letter lists", sum(d.dead for d in depths)),
            "rt_archive_oldest_seconds": ("Age of the oldest message waiting in an archive queue", max(ages) if ages else 0.0),
        }
        return [GaugeMetricFamily(name, text, value=value) for name, (text, value) in values.items()]


ARCHIVE_DEPTHS = ArchiveDepthCollector()
REGISTRY.register(ARCHIVE_DEPTHS)
