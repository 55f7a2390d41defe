"""`/healthz`, `/readyz` and `/metrics` (docs/protocol.md "HTTP").

`/metrics` tells whoever reads it how busy the service is and what fails, so it answers
only the addresses in RT_METRICS_ALLOW (loopback by default) and, when RT_METRICS_TOKEN is
set, any scraper presenting it as a bearer token (Prometheus's `authorization` option).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import metrics, runtime
from .redis_clients import primary_address


async def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok", "protocol": "1.1"})


async def readyz(request: HttpRequest) -> HttpResponse:
    """200 when Redis answers, with the primary in use (after a Sentinel failover, the
    promoted replica); 503 otherwise."""
    client = runtime.current().redis
    try:
        await asyncio.wait_for(client.ping(), 2.0)
        primary = await asyncio.wait_for(primary_address(client), 2.0)
    except Exception as exc:
        metrics.REDIS_UP.set(0)
        return JsonResponse({"status": "unavailable", "redis": exc.__class__.__name__}, status=503)
    metrics.REDIS_UP.set(1)
    return JsonResponse({"status": "ok", "redis": "ok", "primary": primary})


def _client_allowed(request: HttpRequest) -> bool:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR") or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in settings.RT_METRICS_ALLOW)


def _token_allowed(request: HttpRequest) -> bool:
    expected: str | None = settings.RT_METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if not expected or not given.startswith("Bearer "):
        return False
    return hmac.compare_digest(given.removeprefix("Bearer ").encode(), expected.encode())


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Sync on purpose: Django runs it in a worker thread, so the archive depth collector's
    blocking Redis reads never stall the event loop and its sockets."""
    if not (_token_allowed(request) or _client_allowed(request)):
        message = "metrics are served to RT_METRICS_ALLOW addresses and RT_METRICS_TOKEN holders only"
        return JsonResponse({"error": {"code": "forbidden", "message": message}}, status=403)
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
