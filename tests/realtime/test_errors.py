"""Library errors mapped onto the protocol's codes (realtime/errors.py)."""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError

from realtime.errors import BadRequest, Unavailable


def test_a_redis_failure_becomes_unavailable_naming_its_class() -> None:
    err = Unavailable.from_exc(RedisConnectionError("refused"))
    assert isinstance(err, Unavailable)
    assert (err.code, err.status, err.message) == ("unavailable", 503, "Redis cannot be reached: ConnectionError")


def test_a_realtime_error_passes_through_unchanged() -> None:
    original = BadRequest("bad stream name")
    assert Unavailable.from_exc(original) is original
