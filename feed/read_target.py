"""How far a read position may go: up to the last seq that is not a read marker.

A read marker is itself a message of the feed (feed/notifications.py), so "read up to the
latest seq" would, without this, name the marker just published, move the position again
and publish another marker: a loop posting the latest seq would fill the backlog and the
archive with markers and push real notifications out. Capping a proposed position at the
last other message below it makes a move that covers only markers change nothing.
"""

from __future__ import annotations

from typing import Any

import msgspec

from realtime import Backlog

#: Frames read from the backlog per round trip while walking back over markers.
CHUNK = 32


class _Frame(msgspec.Struct):
    data: Any = None


_frame_decoder = msgspec.json.Decoder(_Frame)


def marker_position(frame: str) -> tuple[str, int] | None:
    """(epoch, seq) of a stored `message` frame whose data is `{"read": {"epoch": str, "seq":
    int}}`, the shape clients take as a marker (static/feed/model.js, `readMarkerOf`); None
    for any other frame."""
    data = _frame_decoder.decode(frame).data
    read = data.get("read") if isinstance(data, dict) else None
    if not isinstance(read, dict):
        return None
    epoch, seq = read.get("epoch"), read.get("seq")
    if not isinstance(epoch, str) or type(seq) is not int or seq < 0:
        return None
    return epoch, seq


def is_read_marker(frame: str) -> bool:
    return marker_position(frame) is not None


async def last_readable(backlog: Backlog, stream: str, upto: int) -> tuple[str, int]:
    """(the stream's epoch, the highest seq <= `upto` that is not a read marker), 0 when
    there is none. Where the backlog no longer holds a frame, nothing can be told about it,
    so a walk that reaches the oldest kept frame stops just below it."""
    epoch = ""
    last = upto
    while True:
        got = await backlog.read(stream, first=1, last=last, most=CHUNK)
        epoch = epoch or got.epoch
        if last > got.latest:
            last = got.latest
        if not got.frames:
            # Nothing at or below `last` is kept: either nothing was ever said, or it was trimmed.
            return epoch, 0 if got.first <= 1 else last
        for offset in range(len(got.frames) - 1, -1, -1):
            if not is_read_marker(got.frames[offset]):
                return epoch, got.first + offset
        if got.first <= 1:
            return epoch, 0
        if len(got.frames) < CHUNK:
            return epoch, got.first - 1  # below the oldest kept frame: unknown, allowed
        last = got.first - 1
