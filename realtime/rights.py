"""Rights on every subscribe, read and publish: the table of auth.py plus what only the
database knows (docs/protocol.md 1.1, "Private conversations", "Edits and deletions").

- `group:` streams: members read and write; a `group:` that does not exist answers
  exactly as one that excludes you, so names do not leak.
- `dm:A.B`: users A and B.
- mutes (no publishing) and bans (no publishing; no reading a group) on `room:` and
  `group:` streams, given by moderators: staff, and a group's owner in that group.
- an edit or a deletion only from the sender of its message, or from a moderator.

Token grants (`subs`, `pubs`) stand above all of these, as in auth.py.
"""

from __future__ import annotations

from typing import Any

from .auth import Principal, can_publish, can_subscribe, matches
from .errors import BadRequest, Forbidden
from .names import CHAT_KINDS, StreamName, dm_pair
from .standing import STANDINGS, Standing

#: Kinds whose rights depend on the database.
_STANDING_KINDS = frozenset({"room", "group"})


async def may_read(who: Principal, stream: StreamName) -> bool:
    if matches(who.subs, stream.full):
        return True
    if stream.kind == "group":
        standing = await STANDINGS.of(stream, who.user_id)
        return standing.exists and standing.member and not standing.banned
    if stream.kind == "dm":
        pair = dm_pair(stream.name)
        return who.user_id is not None and pair is not None and who.user_id in pair
    return can_subscribe(who, stream)


async def check_read(who: Principal, stream: StreamName) -> None:
    if not await may_read(who, stream):
        raise Forbidden(f"you may not read {stream.full}")


async def standing_of(who: Principal, stream: StreamName) -> Standing | None:
    if stream.kind not in _STANDING_KINDS or who.user_id is None:
        return None
    return await STANDINGS.of(stream, who.user_id)


def is_moderator(who: Principal, standing: Standing | None) -> bool:
    return who.is_staff or (standing is not None and standing.owner)


async def check_moderator(who: Principal, stream: StreamName) -> Standing | None:
    """Moderators: staff anywhere, a group's owner in that group."""
    standing = await standing_of(who, stream)
    if stream.kind not in _STANDING_KINDS or not is_moderator(who, standing):
        raise Forbidden(f"only moderators of {stream.full} may do that")
    return standing


async def check_publish(who: Principal, stream: StreamName) -> Standing | None:
    """Forbidden unless `who` may publish to `stream` now; the standing read, if any."""
    if matches(who.pubs, stream.full):
        return None
    if stream.kind == "group":
        standing = await STANDINGS.of(stream, who.user_id)
        if not (standing.exists and standing.member) or standing.banned or standing.muted:
            raise Forbidden(f"you may not publish to {stream.full}")
        return standing
    if stream.kind == "dm":
        if not await may_read(who, stream):
            raise Forbidden(f"you may not publish to {stream.full}")
        return None
    if not can_publish(who, stream):
        raise Forbidden(f"you may not publish to {stream.full}")
    if stream.kind == "room" and who.user_id is not None:
        standing = await STANDINGS.of(stream, who.user_id)
        if standing.muted or standing.banned:
            raise Forbidden(f"you are {'banned from' if standing.banned else 'muted in'} {stream.full}")
        return standing
    return None


def change_target(stream: StreamName, data: Any) -> int | None:
    """The seq an edit or deletion names (None: `data` is neither); BadRequest for a
    malformed one, so a client learns at once instead of seeing it ignored."""
    if stream.kind not in CHAT_KINDS or not isinstance(data, dict):
        return None
    if "edit" in data:
        seq, text = data.get("edit"), data.get("text")
        if set(data) != {"edit", "text"} or not isinstance(text, str):
            raise BadRequest('an edit is {"edit": SEQ, "text": STRING}')
    elif "delete" in data:
        seq = data.get("delete")
        if set(data) != {"delete"}:
            raise BadRequest('a deletion is {"delete": SEQ}')
    else:
        return None
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise BadRequest("SEQ must be a positive whole number")
    return seq


def check_change(who: Principal, standing: Standing | None, target: dict[str, Any] | None, seq: int) -> None:
    """`target` is message SEQ of the current epoch (None: there is none): it must be a chat
    message, written by `who` unless `who` moderates the stream."""
    data = target.get("data") if target is not None else None
    if not isinstance(data, dict) or not isinstance(data.get("text"), str) or "edit" in data:
        raise BadRequest(f"seq {seq} is not a chat message of this stream's current epoch")
    author = (target or {}).get("sender") or {}
    if who.user_id is not None and author.get("id") == who.user_id:
        return
    if is_moderator(who, standing):
        return
    raise Forbidden(f"message {seq} is not yours to change")
