"""Throttles for the account pages: the 429 page for a sign-in that django-axes locked out,
and a per-address limit on sign-up attempts.

Sign-ups are counted in Redis, not in a process or in the database: every process of a
cluster shares one Redis (as they may share one DATABASE), so a flood spread over the
processes meets one count, and a counter in Redis expires by itself. The count is a fixed
window per client address, kept by one script so that the first attempt of a window sets
its expiry atomically. When Redis cannot be reached, sign-up answers 503 rather than go on
unthrottled: the chat needs Redis anyway.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from realtime import sync_client

log = logging.getLogger("chat.throttle")

# KEYS[1]: the counter; ARGV[1]: the window in ms. Returns {count, ms left in the window}.
_HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); left = tonumber(ARGV[1]) end
return {n, left}
"""


class _Clients:
    """One sync client per REDIS_URL (the sign-up view runs in Django's worker threads)."""

    def __init__(self) -> None:
        self._by_url: dict[str, redis.Redis] = {}

    def get(self) -> redis.Redis:
        url = settings.REDIS_URL
        if url not in self._by_url:
            self._by_url[url] = sync_client()
        return self._by_url[url]


_clients = _Clients()


def client_address(request: HttpRequest) -> str:
    """The address both throttles count by (django-axes reads the same REMOTE_ADDR)."""
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def hit(bucket: str, key: str, limit: int, window: float) -> float:
    """Count one attempt of `key` in `bucket`: 0.0 while within `limit` per `window`
    seconds, else the seconds until the window ends. Raises redis.RedisError."""
    name = f"{settings.RT_KEY_PREFIX}:throttle:{bucket}:{key}"
    count, left_ms = _clients.get().eval(_HIT, 1, name, int(window * 1000))
    return 0.0 if int(count) <= limit else max(int(left_ms), 1) / 1000


def refused_page(request: HttpRequest, status: int, title: str, text: str, retry_after: float | None) -> HttpResponse:
    response = render(request, "chat/throttled.html", {"title": title, "text": text}, status=status)
    if retry_after is not None:
        response["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return response


def signup_refusal(request: HttpRequest) -> HttpResponse | None:
    """None when this sign-up attempt may go on, else the page that says why not."""
    try:
        wait = hit("signup", client_address(request), settings.RT_SIGNUP_LIMIT, settings.RT_SIGNUP_WINDOW)
    except redis.RedisError as exc:
        log.warning("sign-up refused: Redis cannot be reached (%s)", exc.__class__.__name__)
        return refused_page(request, 503, "Sign-up is unavailable", "Please try again in a minute.", 60)
    if wait == 0.0:
        return None
    log.info("sign-up throttled for %s", client_address(request))
    minutes = max(1, math.ceil(wait / 60))
    text = f"Too many sign-up attempts from your address. Please try again in {minutes} minute{'s' * (minutes > 1)}."
    return refused_page(request, 429, "Too many sign-ups", text, wait)


def locked_out(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the sign-in page's 429. django-axes calls it with differing
    extra arguments from its sync and async middleware, so it reads none of them."""
    cool_off = settings.AXES_COOLOFF_TIME.total_seconds()
    minutes = max(1, math.ceil(cool_off / 60))
    text = (
        "Too many failed sign-ins for this account from your address. "
        f"Sign-in is locked for {minutes} minute{'s' * (minutes > 1)}; every attempt meanwhile starts the wait again."
    )
    return refused_page(request, 429, "Sign-in locked", text, cool_off)
