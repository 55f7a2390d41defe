"""How deep JSON may nest (docs/protocol.md 1.1 "Limits": `data` at most 32 levels).

A deep document is cheap to send and costly everywhere after: decoders and encoders
recurse, and one message stored at depth 970 would turn every page of history that holds
it into a 500 for the whole retention. So depth is refused where data comes in, and a
stored message that is still too deep (written before the limit) is served as an entry
saying so. The scan skips strings and counts brackets; text with few brackets, nearly
every message, is passed by two `count` calls without a scan.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Any

MAX_DEPTH = 32

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_depth(raw: bytes | str) -> int:
    """The deepest nesting of arrays and objects in a JSON text (0 for a scalar)."""
    data = raw.encode() if isinstance(raw, str) else bytes(raw)
    brackets = _BRACKET.findall(_STRING.sub(b"", data))
    return max(accumulate(_DEPTH_STEP[b[0]] for b in brackets), default=0)


def too_deep(raw: bytes | str, limit: int = MAX_DEPTH) -> bool:
    """Whether the text nests deeper than `limit`; no scan when it has few brackets (their
    count, strings included, bounds the depth)."""
    data = raw.encode() if isinstance(raw, str) else raw
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    return json_depth(data) > limit


def object_depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """The nesting of a decoded JSON value, counted no further than `limit + 1`."""
    depth, level = 0, [value]
    while level and depth <= limit:
        children: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                children.extend(item.values())
            elif isinstance(item, list):
                children.extend(item)
        if not any(isinstance(item, dict | list) for item in level):
            break
        depth += 1
        level = children
    return depth
