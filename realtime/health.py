"""`/healthz`, `/readyz` and `/metrics` (PROTOCOL.md "HTTP")."""

from __future__ import annotations

import asyncio

from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import metrics, runtime


async def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


async def readyz(request: HttpRequest) -> HttpResponse:
    try:
        await asyncio.wait_for(runtime.current().redis.ping(), 2.0)
    except Exception as exc:
        metrics.REDIS_UP.set(0)
        return JsonResponse({"status": "unavailable", "redis": exc.__class__.__name__}, status=503)
    metrics.REDIS_UP.set(1)
    return JsonResponse({"status": "ok", "redis": "ok"})


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Sync on purpose: Django runs it in a worker thread, so the archive depth collector's
    blocking Redis reads never stall the event loop and its sockets."""
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
