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

from prometheus_client import REGISTRY

if TYPE_CHECKING:
    from .hub import StreamHub

log = logging.getLogger("realtime.stats")

STATS_STREAM = "staff:stats"
BUSIEST = 5
#: The process-wide series the page shows, by metric name.
SERIES = {
    "connections": "rt_connections",
    "subscriptions": "rt_subscriptions",
    "delivered": "rt_messages_delivered_total",
    "published": "rt_messages_published_total",
    "holes_filled": "rt_holes_filled_total",
    "recoveries_refused": "rt_recoveries_refused_total",
    "slow_closed": "rt_slow_consumers_closed_total",
    "redis_up": "rt_redis_up",
}


class StatsReporter:
    def __init__(self, hub: StreamHub, interval: float = 1.0) -> None:
        self.hub = hub
        self.interval = interval
        self.process = uuid.uuid4().hex[:8]
        self._last: dict[str, int] = {}

    def figures(self) -> dict[str, Any]:
        """This process's figures now, and its busiest streams since the last report."""
        wanted = set(SERIES.values())
        values = dict.fromkeys(wanted, 0.0)
        for family in REGISTRY.collect():
            for sample in family.samples:
                if sample.name in wanted:
                    values[sample.name] += sample.value
        rates = []
        for name, state in self.hub.streams.items():
            if name == STATS_STREAM:
                continue
            rates.append((state.delivered - self._last.get(name, 0), len(state.members), name))
        self._last = {name: state.delivered for name, state in self.hub.streams.items()}
        rates.sort(reverse=True)
        busiest = [{"stream": n, "subscribers": s, "delivered": d} for d, s, n in rates[:BUSIEST]]
        series = {key: values[metric] for key, metric in SERIES.items()}
        return {"process": self.process, "ts": int(time.time() * 1000), **series, "busiest": busiest}

    async def run(self) -> None:
        from .publishing import apublish

        while True:
            await asyncio.sleep(self.interval)
            try:
                ((watching, _),) = await self.hub.occupancy.figures([STATS_STREAM])
                report = self.figures()
                if watching:
                    await apublish(STATS_STREAM, report)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info("stats not published: %s", exc)
