"""The ordering rules of the delivery promise, as pure functions (docs/protocol.md "The delivery promise").

Kept free of I/O so that they can be tested exhaustively: given a position and what
arrived (live, or read from the backlog), they say what to send and whether a hole is
left that cannot be filled.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .backlog import Range
from .protocol import Since


class Arrival(enum.Enum):
    """What to do with a live message of seq `n` at position `last`."""

    DUPLICATE = "duplicate"  # n <= last: already passed on
    NEXT = "next"  # n == last + 1: pass on
    AHEAD = "ahead"  # n > last + 1: a hole; read it from the backlog first


def classify(last: int, seq: int) -> Arrival:
    if seq <= last:
        return Arrival.DUPLICATE
    if seq == last + 1:
        return Arrival.NEXT
    return Arrival.AHEAD


@dataclass(frozen=True, slots=True)
class Fill:
    """Frames read to fill a hole: `frames` (seq, text) run without a gap from
    `lost_upto + 1` (empty: nothing new), and `lost_upto` > last when messages before
    them were trimmed away (an unfillable hole)."""

    frames: list[tuple[int, str]]
    lost_upto: int


def plan_fill(last: int, got: Range) -> Fill:
    """Merge a backlog read into a position: skip what was already passed on, and say
    whether the read starts after `last + 1` (the backlog no longer has the hole)."""
    lost_upto = last
    if got.first > last + 1:  # read.lua clamps `first` to what is kept: frames or not, a hole
        lost_upto = got.first - 1
    frames = [(got.first + i, text) for i, text in enumerate(got.frames) if got.first + i > last]
    return Fill(frames, lost_upto)


@dataclass(frozen=True, slots=True)
class Start:
    """How a subscription starts: the replay frames, its position after them, and
    whether a requested `since` is honoured in full."""

    recovered: bool
    frames: list[str]
    position: int


def plan_since(since: Since, got: Range) -> Start:
    """`got` was read from `since.seq + 1`. Honoured only in the same epoch, for a seq the
    stream has reached, with nothing trimmed between since and what the backlog has."""
    if since.epoch != got.epoch or since.seq > got.latest:
        return Start(False, [], got.latest)
    if since.seq < got.latest and got.first > since.seq + 1:
        return Start(False, [], got.latest)
    return Start(True, got.frames, got.latest)
