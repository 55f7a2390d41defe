"""Token buckets: `rate` tokens per second, up to `burst` saved up; and the process's
buckets per sender, so that a limit binds a person, not one of their sockets.

docs/protocol.md 1.1 "Limits": publish rates are per sender, shared by all of its connections
and requests on one server process; a backend publisher (a `pubs` grant covering the
stream) has its own, higher rate. Typing is limited per user the same way. Subscribe
churn (a subscribe or an unsubscribe each spends a token; only subscribes are refused) and
presence queries are limited per connection (each costs that connection's work only).
The rates are settings (config/settings.py); these are the only buckets.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from django.conf import settings

from .errors import RateLimited


class TokenBucket:
    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> float:
        """Take one token: 0.0 when granted, else the seconds until one is available."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate

    def spend(self) -> None:
        """Use one token if there is one, never refusing: for what must always be let through
        (leaving a stream) but still counts towards the limit of what comes next."""
        if self.take() > 0:
            self.tokens = 0.0

    def take_or_raise(self, what: str) -> None:
        """Take one token or raise RateLimited("over <what>") saying how long to wait."""
        wait = self.take()
        if wait > 0:
            raise RateLimited(f"over {what}", retry_after=round(wait + 0.0005, 3))


class KeyedBuckets:
    """One bucket per key (a sender) in this process, the least recently used forgotten
    past `size` keys (a forgotten key starts again with a full burst)."""

    def __init__(self, limits: Callable[[], tuple[float, int]], what: str, size: int = 10_000) -> None:
        self.limits = limits  # read when a bucket is made: tests and operators change settings
        self.what = what
        self.size = size
        self.buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def bucket(self, key: str) -> TokenBucket:
        bucket = self.buckets.pop(key, None)
        if bucket is None:
            bucket = TokenBucket(*self.limits())
        self.buckets[key] = bucket
        if len(self.buckets) > self.size:
            self.buckets.popitem(last=False)
        return bucket

    def take(self, key: str) -> float:
        return self.bucket(key).take()

    def take_or_raise(self, key: str) -> None:
        bucket = self.bucket(key)
        bucket.take_or_raise(f"{bucket.rate:g} {self.what} per second")

    def clear(self) -> None:
        self.buckets.clear()


def _rates(rate: str, burst: str) -> Callable[[], tuple[float, int]]:
    return lambda: (float(getattr(settings, rate)), int(getattr(settings, burst)))


#: Publishes of a sender that is not a backend publisher of the stream.
PUBLISHES = KeyedBuckets(_rates("RT_PUBLISH_RATE", "RT_PUBLISH_BURST"), "publishes")
#: Publishes of a backend publisher (its `pubs` grant covers the stream).
BACKEND_PUBLISHES = KeyedBuckets(_rates("RT_BACKEND_PUBLISH_RATE", "RT_BACKEND_PUBLISH_BURST"), "backend publishes")
#: Typing signals of a user, over all of their sockets (excess ones are dropped).
TYPING = KeyedBuckets(_rates("RT_TYPING_RATE", "RT_TYPING_BURST"), "typing signals")


def connection_bucket(rate: str, burst: str) -> TokenBucket:
    """A bucket of one connection, from the settings named `rate` and `burst`."""
    return TokenBucket(*_rates(rate, burst)())


def take_publish(sender_key: str, backend: bool) -> None:
    """One publish of `sender_key`, or RateLimited saying when to retry."""
    (BACKEND_PUBLISHES if backend else PUBLISHES).take_or_raise(sender_key)


def forget_all() -> None:
    """Start every sender's buckets afresh (tests: each starts with full bursts)."""
    for buckets in (PUBLISHES, BACKEND_PUBLISHES, TYPING):
        buckets.clear()
