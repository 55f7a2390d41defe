"""The channel-layer events between server processes: a builder and a reader per kind.

Every event is a dict whose `type` names its kind (the Channels convention), and the
hub dispatches on it. The other keys are one letter: each event travels through Redis
pub/sub once per process, and a message's own frame text is most of it.

    rt.msg  a stored message    s: stream, e: epoch, n: seq, t: the `message` frame text
            (built by append.lua as well, which publishes it with the append)
    rt.eph  an ephemeral frame  s: stream, t: frame text (presence, typing: no seq)
    rt.ctl  a session change    k: "session" with h: session tag, or "user" with u: user id;
            or a change of rights   k: "rights" with s: stream, u: user id ("" for everyone)
    rt.probe  a hub's message to itself   n: its number (is the subscription still live?)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MESSAGE = "rt.msg"
EPHEMERAL = "rt.eph"
CONTROL = "rt.ctl"
PROBE = "rt.probe"


@dataclass(frozen=True, slots=True)
class Message:
    stream: str
    epoch: str
    seq: int
    text: str


@dataclass(frozen=True, slots=True)
class Ephemeral:
    stream: str
    text: str


@dataclass(frozen=True, slots=True)
class SessionEnded:
    tag: str


@dataclass(frozen=True, slots=True)
class UserChanged:
    user_id: str


@dataclass(frozen=True, slots=True)
class RightsChanged:
    """A user's standing on a stream changed (membership, mute, ban); user_id None: anyone's."""

    stream: str
    user_id: str | None


@dataclass(frozen=True, slots=True)
class Probe:
    number: int


Event = Message | Ephemeral | SessionEnded | UserChanged | RightsChanged | Probe


def message(stream: str, epoch: str, seq: int, text: str) -> dict[str, Any]:
    return {"type": MESSAGE, "s": stream, "e": epoch, "n": seq, "t": text}


def ephemeral(stream: str, text: str) -> dict[str, Any]:
    return {"type": EPHEMERAL, "s": stream, "t": text}


def session_ended(tag: str) -> dict[str, Any]:
    return {"type": CONTROL, "k": "session", "h": tag}


def user_changed(user_id: str) -> dict[str, Any]:
    return {"type": CONTROL, "k": "user", "u": user_id}


def rights_changed(stream: str, user_id: str | None) -> dict[str, Any]:
    return {"type": CONTROL, "k": "rights", "s": stream, "u": user_id or ""}


def probe(number: int) -> dict[str, Any]:
    return {"type": PROBE, "n": number}


def read(event: dict[str, Any]) -> Event | None:
    """The event as a typed value; None for a kind this process does not know (a newer
    process of a rolling upgrade may send one), which the receiver skips."""
    kind = event.get("type")
    if kind == MESSAGE:
        return Message(event["s"], event["e"], int(event["n"]), event["t"])
    if kind == EPHEMERAL:
        return Ephemeral(event["s"], event["t"])
    if kind == PROBE:
        return Probe(int(event["n"]))
    if kind == CONTROL:
        if event.get("k") == "session":
            return SessionEnded(str(event["h"]))
        if event.get("k") == "user":
            return UserChanged(str(event["u"]))
        if event.get("k") == "rights":
            return RightsChanged(str(event["s"]), str(event["u"]) or None)
    return None
