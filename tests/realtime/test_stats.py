"""The figures each process reports to the stats page (realtime/stats.py): its own series
read from memory on the event loop, and the archive's read from Redis off it."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from realtime import metrics
from realtime.redis_clients import sync_client
from realtime.stats import StatsReporter, _archive_figures


def reporter() -> StatsReporter:
    return StatsReporter(SimpleNamespace(streams={}))  # type: ignore[arg-type]  # only .streams is read


def test_a_report_carries_every_series_and_reads_nothing_from_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_redis() -> Any:
        raise AssertionError("figures() must not read the archive depths on the event loop")

    monkeypatch.setattr(metrics.ARCHIVE_DEPTHS, "collect", no_redis)
    before = reporter().figures()
    metrics.PUBLISH_LATENCY.observe(0.004)
    after = reporter().figures()
    assert after["publish_count"] == before["publish_count"] + 1
    assert after["publish_seconds_sum"] == pytest.approx(before["publish_seconds_sum"] + 0.004)
    assert {"connections", "subscriptions", "delivered", "published", "redis_up", "busiest"} <= set(after)


def test_the_archive_figures_come_from_the_queues_in_redis(rt_settings: str) -> None:
    from django.conf import settings

    from realtime.archive import bucket_keys

    client = sync_client()
    queue, dead = bucket_keys(rt_settings, 0).queue, bucket_keys(rt_settings, 0).dead
    entry = 'room:x\n{"epoch":"e","seq":1,"ts":%d,"data":1}' % (time.time() * 1000 - 7000)
    client.rpush(queue, entry, entry)
    client.rpush(dead, entry)
    metrics.ARCHIVE_DEPTHS._at = -metrics.ARCHIVE_DEPTHS._every  # read again now, not the cached figures
    try:
        figures = _archive_figures()
    finally:
        client.delete(queue, dead)
        client.close()
    assert settings.RT_KEY_PREFIX == rt_settings
    assert figures["archive_queued"] == 2 and figures["archive_dead"] == 1
    assert 6 <= figures["archive_oldest_s"] < 60
