"""`/api/feed/{user_id}/read`: a person's read position over HTTP (docs/embed.md).

Mounted on the realtime NinjaAPI by `feed.apps`, so it shares its credentials (a bearer
token from any origin, or the session with CSRF for POST), its error shape and its OpenAPI
document. Whoever may read the feed `user:<id>` (that user, or a token with a matching
`subs` grant) may read and move its read position; a move is announced on the feed as a
read marker, so the person's other tabs and devices lower their unread count.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from django.conf import settings
from django.http import HttpRequest
from ninja import Field, Path, Router, Schema

from realtime import (
    ERRORS,
    MAX_SEQ,
    BadRequest,
    ErrorOut,
    Forbidden,
    KeyedBuckets,
    Principal,
    Sender,
    StreamName,
    apublish,
    can_subscribe,
    current_backlog,
    decode_body,
    json_body,
    parse_stream,
    principal_of,
    require_csrf,
)

from . import read_state
from .notifications import read_marker
from .read_target import last_readable, marker_position

router = Router(tags=["feed"])

UserIdPath = Annotated[
    str, Path(..., pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="the user id of the feed user:<id>")
]


class ReadPositionIn(Schema):
    """Documents the body; it is decoded with msgspec (strict types, the API's error shape)."""

    epoch: str = Field(..., min_length=1, max_length=64, description="the feed's current epoch")
    seq: int = Field(..., ge=0, le=MAX_SEQ, description="everything up to this seq is read")


class _ReadPositionBody(msgspec.Struct, frozen=True):
    epoch: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    # JSON Schema's "integer" includes 3.0, so an integral float is a whole number too.
    seq: Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)] | Annotated[float, msgspec.Meta(ge=0, le=MAX_SEQ)]


_body_decoder = msgspec.json.Decoder(_ReadPositionBody)


def _read_body(request: HttpRequest) -> _ReadPositionBody:
    body = decode_body(request, _body_decoder)
    if isinstance(body.seq, float) and not body.seq.is_integer():
        raise BadRequest("body: `seq` must be a whole number")
    return body


class ReadPositionOut(Schema):
    stream: str
    epoch: str | None = Field(None, description="null until the person first marks something read")
    seq: int = Field(0, description="read up to and including this seq of `epoch`")


#: Read marks per sender, at the publish rate: each accepted mark can publish a marker.
READ_MARKS = KeyedBuckets(lambda: (settings.RT_PUBLISH_RATE, settings.RT_PUBLISH_BURST), "read marks")
#: Read markers are published under their own sender key, so that their idempotency ids
#: (`read:{epoch}:{seq}`) share no namespace with anyone's publishes; they carry no sender.
MARKER_SENDER = Sender(key="feed:read-marker")


async def _feed_of(request: HttpRequest, user_id: str, for_write: bool) -> tuple[StreamName, Principal]:
    """The feed `user:<user_id>` and who asks, once their right to it is checked."""
    name = parse_stream(f"user:{user_id}")
    who = await principal_of(request)
    if for_write:
        require_csrf(request, who)
    if not can_subscribe(who, name):
        raise Forbidden(f"no right to the read state of {name.full}")
    return name, who


def _take_mark(who: Principal) -> None:
    READ_MARKS.take_or_raise(who.sender_key)


def _answer(feed: StreamName, position: read_state.Position | None) -> dict[str, Any]:
    if position is None:
        return {"stream": feed.full, "epoch": None, "seq": 0}
    return {"stream": feed.full, "epoch": position.epoch, "seq": position.seq}


@router.get("/{user_id}/read", response={200: ReadPositionOut, **ERRORS}, summary="Read a feed's read position")
async def get_read_position(request: HttpRequest, user_id: UserIdPath) -> dict[str, Any]:
    feed, _ = await _feed_of(request, user_id, for_write=False)
    return _answer(feed, await read_state.load(feed.name))


@router.post(
    "/{user_id}/read",
    response={200: ReadPositionOut, 413: ErrorOut, 429: ErrorOut, **ERRORS},
    openapi_extra=json_body(ReadPositionIn.model_json_schema()),
    summary="Mark a feed read up to a position",
)
async def mark_read(request: HttpRequest, user_id: UserIdPath) -> dict[str, Any]:
    """Moves the position forward only, in the feed's current epoch, at most to its last
    message that is not a read marker; answers the position kept (unchanged for an older
    position or another epoch). Rate-limited per sender like publishing."""
    feed, who = await _feed_of(request, user_id, for_write=True)
    body = _read_body(request)
    _take_mark(who)
    stream, person = feed.full, feed.name
    backlog = current_backlog()
    top = await backlog.read(stream, first=1, last=-1, most=1)
    if body.epoch != top.epoch:
        # A tab still in a lost epoch: nothing can move, no need to walk the backlog.
        return _answer(feed, await read_state.load(person))
    epoch, readable = await last_readable(backlog, stream, int(body.seq))
    proposed = read_state.Position(body.epoch, int(body.seq))
    kept, moved = await read_state.advance(person, proposed, epoch, readable)
    # Announce the kept position whenever it is the one this request asked for, moved now
    # or by an earlier try whose publish failed (Redis down after the save), unless the
    # latest message kept is already its marker: a repeated "mark all read" adds nothing,
    # even after the idempotency window, and the id makes a repeat within it a no-op.
    asked = read_state.Position(epoch, min(int(body.seq), readable))
    if kept is not None and kept == asked and body.epoch == epoch and (moved or not _announced(top.frames, kept)):
        await apublish(stream, read_marker(kept), MARKER_SENDER, id=f"read:{kept.epoch}:{kept.seq}")
    return _answer(feed, kept)


def _announced(top: list[str], position: read_state.Position) -> bool:
    """Whether the latest frame kept (`top`, at most one) is the marker of `position`."""
    return bool(top) and marker_position(top[-1]) == (position.epoch, position.seq)
