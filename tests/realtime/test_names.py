"""Stream names and the Redis keys they map to (realtime/names.py)."""

from __future__ import annotations

import re

import pytest

from realtime.errors import BadRequest
from realtime.names import NAME_PATTERN, archive_queue, bucket_of, parse_stream, stream_keys


def test_every_key_of_a_stream_carries_its_bucket_tag() -> None:
    keys = stream_keys("rt", "room:lobby", 16)
    tag = "{rt:%d}" % bucket_of("room:lobby", 16)
    assert keys.meta == f"{tag}:meta:room:lobby"
    assert keys.presence == f"{tag}:presence:room:lobby"
    assert keys.archive == archive_queue("rt", bucket_of("room:lobby", 16)) == f"{tag}:archive"


@pytest.mark.parametrize("name", ["a", "Lobby_1.2-x", "x" * 64])
def test_the_name_pattern_is_the_rule_parse_stream_applies(name: str) -> None:
    assert re.fullmatch(NAME_PATTERN, name)
    assert parse_stream(f"room:{name}").name == name


@pytest.mark.parametrize("name", ["", "a b", "x" * 65, "a:b", "é"])
def test_a_name_outside_the_pattern_is_refused(name: str) -> None:
    assert not re.fullmatch(NAME_PATTERN, name)
    with pytest.raises(BadRequest):
        parse_stream(f"room:{name}")
