"""`/api/read/{stream}` and `/api/conversations`: read positions and unread counts of the
conversations a person follows (chat/conversations.py), on the realtime API's credentials.

Only a person (a session, or a token with `sub`) has read positions; the right to one is
the right to read its stream, checked on every request.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from django.conf import settings
from django.http import HttpRequest
from ninja import Field, Path, Router, Schema

from feed.read_state import Position
from realtime import (
    CHAT_KINDS,
    CHAT_STREAM_PATTERN,
    ERRORS,
    MAX_SEQ,
    BadRequest,
    ErrorOut,
    Forbidden,
    KeyedBuckets,
    Principal,
    StreamName,
    decode_body,
    json_body,
    may_read,
    parse_stream,
    principal_of,
    require_csrf,
)

from . import conversations

read_router = Router(tags=["chat"])
list_router = Router(tags=["chat"])

StreamPath = Annotated[str, Path(..., pattern=CHAT_STREAM_PATTERN, description="a room:, group: or dm: stream (dm:A.B with A < B)")]


class ReadIn(Schema):
    epoch: str = Field(..., min_length=1, max_length=64)
    seq: int = Field(..., ge=0, le=MAX_SEQ)


class _ReadBody(msgspec.Struct, frozen=True):
    epoch: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    seq: Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)]


class ReadOut(Schema):
    stream: str
    epoch: str = Field(..., description='"" until the person first reads something')
    seq: int


class ConversationOut(Schema):
    stream: str
    kind: str
    title: str
    url: str
    unread: int
    latest_ts: int | None


class ConversationsOut(Schema):
    conversations: list[ConversationOut]


_read_body = msgspec.json.Decoder(_ReadBody)
READ_MOVES = KeyedBuckets(lambda: (settings.RT_PUBLISH_RATE, settings.RT_PUBLISH_BURST), "read marks")


async def _person(request: HttpRequest, *, write: bool) -> Principal:
    who = await principal_of(request)
    if write:
        require_csrf(request, who)
    if who.user_id is None or not who.user_id.isdigit():
        raise Forbidden("read positions are kept for signed-in people")
    return who


async def _readable(who: Principal, stream: str) -> StreamName:
    name = parse_stream(stream)
    if name.kind not in CHAT_KINDS:
        raise BadRequest("read positions are kept here for room:, group: and dm: streams (feeds: /api/feed/)")
    if not await may_read(who, name):
        raise Forbidden(f"no right to read {name.full}")
    return name


def _answer(stream: str, kept: Position | None) -> dict[str, Any]:
    return {"stream": stream, "epoch": kept.epoch if kept else "", "seq": kept.seq if kept else 0}


@read_router.get("/{stream}", response={200: ReadOut, **ERRORS}, summary="How far I have read a conversation")
async def get_read(request: HttpRequest, stream: StreamPath) -> dict[str, Any]:
    who = await _person(request, write=False)
    name = await _readable(who, stream)
    return _answer(name.full, await conversations.read_mark(int(who.user_id or 0), name.full))


@read_router.post(
    "/{stream}",
    response={200: ReadOut, 413: ErrorOut, 429: ErrorOut, **ERRORS},
    openapi_extra=json_body(ReadIn.model_json_schema()),
    summary="Mark a conversation read up to a seq",
)
async def post_read(request: HttpRequest, stream: StreamPath) -> dict[str, Any]:
    """Forward only, in the current epoch, capped at the latest seq; answers the position
    kept. Every tab of the person hears of a move on `user:<id>` (a `read` frame)."""
    who = await _person(request, write=True)
    name = await _readable(who, stream)
    body = decode_body(request, _read_body)
    READ_MOVES.take_or_raise(who.sender_key)
    kept = await conversations.advance(int(who.user_id or 0), name.full, Position(body.epoch, body.seq))
    return _answer(name.full, kept)


@list_router.get("", response={200: ConversationsOut, **ERRORS}, summary="My conversations, newest first")
async def list_conversations(request: HttpRequest) -> dict[str, Any]:
    who = await _person(request, write=False)
    return {"conversations": await conversations.listing(int(who.user_id or 0))}
