"""The token bucket behind every rate limit (realtime/ratelimit.py)."""

from __future__ import annotations

import pytest

from realtime.errors import RateLimited
from realtime.ratelimit import TokenBucket


def test_take_or_raise_refuses_past_the_burst_saying_what_and_when() -> None:
    bucket = TokenBucket(0.001, 2)  # refills one token in 1000 s: none comes back during the test
    bucket.take_or_raise("2 things per second")
    bucket.take_or_raise("2 things per second")
    with pytest.raises(RateLimited) as refused:
        bucket.take_or_raise("2 things per second")
    assert refused.value.message == "over 2 things per second"
    assert refused.value.code == "rate_limited" and refused.value.retry_after > 0


def test_a_zero_rate_never_limits() -> None:
    bucket = TokenBucket(0, 1)
    for _ in range(100):
        bucket.take_or_raise("nothing")
