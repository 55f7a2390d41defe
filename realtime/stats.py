"""The operators' live figures: each server process publishes its own to `staff:stats`
once a second while someone watches, and the staff page (/stats/) adds them up.

Fed over the product's own WebSocket, so watching costs no polling and shows the same
delivery as any stream. A process publishes only while the stream's occupancy says a page
is open, so an unwatched cluster pays one occupancy read per interval and nothing more.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from . import metrics

if TYPE_CHECKING:
    from .hub import StreamHub

log = logging.getLogger("realtime.stats")

STATS_STREAM = "staff:stats"
BUSIEST = 5
#: The process's own series the page shows: report key, sample name, metric.
SERIES = [
    ("connections", "rt_connections", metrics.CONNECTIONS),
    ("subscriptions", "rt_subscriptions", metrics.SUBSCRIPTIONS),
    ("delivered", "rt_messages_delivered_total", metrics.DELIVERED),
    ("published", "rt_messages_published_total", metrics.PUBLISHED),
    ("holes_filled", "rt_holes_filled_total", metrics.HOLES_FILLED),
    ("recoveries_refused", "rt_recoveries_refused_total", metrics.RECOVERIES_REFUSED),
    ("slow_closed", "rt_slow_consumers_closed_total", metrics.SLOW_CLOSED),
    ("redis_up", "rt_redis_up", metrics.REDIS_UP),
    # The page divides their rates: the mean publish latency over each second.
    ("publish_seconds_sum", "rt_publish_seconds_sum", metrics.PUBLISH_LATENCY),
    ("publish_count", "rt_publish_seconds_count", metrics.PUBLISH_LATENCY),
]
#: The archive's figures, read from Redis (the same for every process): report key, gauge.
ARCHIVE = [
    ("archive_queued", "rt_archive_queued"),
    ("archive_dead", "rt_archive_dead"),
    ("archive_oldest_s", "rt_archive_oldest_seconds"),
]


def _archive_figures() -> dict[str, float]:
    """Blocking (a Redis read at most every 5 s, shared with /metrics): run in a thread."""
    values = {sample.name: sample.value for family in metrics.ARCHIVE_DEPTHS.collect() for sample in family.samples}
    return {key: values[name] for key, name in ARCHIVE if name in values}


class StatsReporter:
    def __init__(self, hub: StreamHub, interval: float = 1.0) -> None:
        self.hub = hub
        self.interval = interval
        self.process = uuid.uuid4().hex[:8]
        self._last: dict[str, int] = {}

    def figures(self) -> dict[str, Any]:
        """This process's figures now, and its busiest streams since the last report. Only
        in-memory series: nothing here waits on Redis, as it runs on the event loop."""
        values = dict.fromkeys((name for _, name, _ in SERIES), 0.0)
        for metric in {id(m): m for _, _, m in SERIES}.values():
            for family in metric.collect():
                for sample in family.samples:
                    if sample.name in values:
                        values[sample.name] += sample.value
        rates = []
        for name, state in self.hub.streams.items():
            if name == STATS_STREAM:
                continue
            rates.append((state.delivered - self._last.get(name, 0), len(state.members), name))
        self._last = {name: state.delivered for name, state in self.hub.streams.items()}
        rates.sort(reverse=True)
        busiest = [{"stream": n, "subscribers": s, "delivered": d} for d, s, n in rates[:BUSIEST]]
        series = {key: values[name] for key, name, _ in SERIES}
        return {"process": self.process, "ts": int(time.time() * 1000), **series, "busiest": busiest}

    async def run(self) -> None:
        from .publishing import apublish

        while True:
            await asyncio.sleep(self.interval)
            try:
                ((watching, _),) = await self.hub.occupancy.figures([STATS_STREAM])
                report = self.figures()
                if watching:
                    report.update(await asyncio.to_thread(_archive_figures))
                    await apublish(STATS_STREAM, report)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info("stats not published: %s", exc)
