"""Prometheus metrics of this process (served at `/metrics`; each process serves its own)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONNECTIONS = Gauge("rt_connections", "Open WebSocket connections")
SUBSCRIPTIONS = Gauge("rt_subscriptions", "Active stream subscriptions")
HUB_STREAMS = Gauge("rt_hub_streams", "Streams this process's hub has joined")
PUBLISHED = Counter("rt_messages_published_total", "Messages stored and fanned out", ["kind"])
DELIVERED = Counter("rt_messages_delivered_total", "Message frames handed to sockets")
REPLAYED = Counter("rt_messages_replayed_total", "Messages sent from the backlog on subscribe")
HOLES_FILLED = Counter("rt_holes_filled_total", "Messages the hub read from the backlog to fill a hole")
RECOVERIES_REFUSED = Counter("rt_recoveries_refused_total", "Subscriptions answered recovered=false")
ERRORS = Counter("rt_errors_total", "Error frames and responses sent", ["code"])
SLOW_CLOSED = Counter("rt_slow_consumers_closed_total", "Connections closed for falling behind")
PUBLISH_LATENCY = Histogram(
    "rt_publish_seconds",
    "Time to store and fan out one publish",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
REDIS_UP = Gauge("rt_redis_up", "1 when this process last reached Redis, 0 when it failed")
