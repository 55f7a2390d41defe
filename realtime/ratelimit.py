"""A token bucket: `rate` tokens per second, up to `burst` saved up."""

from __future__ import annotations

import time

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

    def take_or_raise(self, what: str) -> None:
        """Take one token or raise RateLimited("over <what>") saying how long to wait."""
        wait = self.take()
        if wait > 0:
            raise RateLimited(f"over {what}", retry_after=round(wait, 3))
