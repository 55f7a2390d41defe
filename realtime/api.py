"""The HTTP API (docs/protocol.md "HTTP"): publish to a stream and read its backlog.

Thin by design, like the consumer: find the credentials, check rights with the same
rules as the WebSocket (`rights.check_read`, `gate.check_client_publish`), then call
`apublish` or `Backlog.read`. Every error is `{"error": {"code", "message"}}` with the
status of its `RealtimeError` class. A read with `since` follows the delivery promise:
messages after `since` with no holes, or `recovered: false` and none, never a silent skip.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import Field, NinjaAPI, Path, Query, Schema
from ninja.errors import ValidationError

from . import runtime
from .auth import is_backend_publisher
from .backlog import Range
from .body_limit import BATCH_LIMIT
from .errors import BadRequest, RealtimeError, Unavailable
from .gate import announce, check_client_publish, decoded
from .history import continue_from_archive, message_object, older_page
from .http import (
    ERRORS,
    MAX_SEQ,
    ErrorOut,
    decode_body,
    error_object,
    error_response,
    json_body,
    principal_of,
    require_csrf,
)
from .names import KINDS, NAME_PATTERN, StreamName, parse_stream
from .ordering import plan_since
from .protocol import ClientId, Since, encode_json
from .publishing import ARCHIVED_KINDS, Outgoing, apublish, apublish_each
from .ratelimit import take_publish
from .rights import change_target, check_read

# A `dm:` name is two ids around one dot; that they must be in ascending order is beyond
# a pattern (the description says it, and the server answers 400).
STREAM_PATTERN = r"^(?:(?:%s):%s|dm:[A-Za-z0-9_-]{1,31}\.[A-Za-z0-9_-]{1,32})$" % (
    "|".join(k for k in KINDS if k != "dm"),
    NAME_PATTERN,
)
DEFAULT_LIMIT = 100


# -- Schemas: the OpenAPI document's view of the wire contract ------------------------


class PublishIn(Schema):
    """Documents the body; it is decoded with msgspec so that `data` is copied, not re-encoded."""

    data: Any = Field(..., description="any JSON value")
    id: str | None = Field(None, min_length=1, max_length=64, description="idempotency id of this sender")


class PublishedOut(Schema):
    stream: str
    seq: int
    epoch: str


class SenderOut(Schema):
    id: str
    name: str


class MessageOut(Schema):
    stream: str
    seq: int
    epoch: str
    ts: int
    data: Any
    sender: SenderOut | None


class MessagesOut(Schema):
    stream: str
    epoch: str
    seq: int
    recovered: bool
    messages: list[MessageOut]


class _PublishBody(msgspec.Struct, frozen=True):
    data: msgspec.Raw
    id: ClientId | None = None


_body_decoder = msgspec.json.Decoder(_PublishBody)

#: POST /api/messages (docs/protocol.md 1.1 "Many messages at once"): 1 to 1000 items, 1 MiB.
MAX_BATCH_ITEMS = 1000
MAX_BATCH_BODY = BATCH_LIMIT


class _BatchItem(msgspec.Struct, frozen=True):
    stream: str
    data: msgspec.Raw
    id: ClientId | None = None


class _BatchBody(msgspec.Struct, frozen=True):
    messages: Annotated[list[_BatchItem], msgspec.Meta(min_length=1, max_length=MAX_BATCH_ITEMS)]


_batch_decoder = msgspec.json.Decoder(_BatchBody)


class BatchItemIn(Schema):
    stream: str = Field(..., description="a stream name, KIND:NAME")
    data: Any = Field(..., description="any JSON value")
    id: str | None = Field(None, min_length=1, max_length=64, description="idempotency id of this sender")


#: The batch body's JSON schema, its item schema inlined: a pydantic model's `$defs`
#: reference would not resolve inside the OpenAPI document.
BATCH_SCHEMA = {
    "type": "object",
    "required": ["messages"],
    "properties": {
        "messages": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_BATCH_ITEMS,
            "items": BatchItemIn.model_json_schema(),
        }
    },
}


class BatchOut(Schema):
    results: list[dict[str, Any]] = Field(
        ..., description='one per item, in order: {"stream", "seq", "epoch"} or {"error": {"code", "message"}}'
    )

StreamPath = Annotated[str, Path(..., pattern=STREAM_PATTERN, description="a stream name, KIND:NAME (dm:A.B with A < B)")]
api = NinjaAPI(
    title="Realtime streams",
    version="1",
    description="Publish to and read the streams of docs/protocol.md over HTTP.",
    urls_namespace="realtime-api",
)


# -- Errors -------------------------------------------------------------------------


@api.exception_handler(RealtimeError)
def _realtime_error(request: HttpRequest, exc: RealtimeError) -> HttpResponse:
    return error_response(exc)


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return error_response(BadRequest(_explain(exc.errors)))


def _explain(errors: list[Any]) -> str:
    """ninja's validation errors as one line: where, then what."""
    parts = []
    for err in errors[:3]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("path", "query", "body"))
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid")))
    return "; ".join(parts) or "invalid request"


def read_body(request: HttpRequest) -> _PublishBody:
    return decode_body(request, _body_decoder)


# -- Endpoints ----------------------------------------------------------------------


@api.post(
    "/streams/{stream}/messages",
    response={201: PublishedOut, 200: PublishedOut, 413: ErrorOut, 429: ErrorOut, **ERRORS},
    openapi_extra=json_body(PublishIn.model_json_schema()),
    summary="Publish a message",
)
async def publish_message(request: HttpRequest, stream: StreamPath) -> tuple[int, dict[str, Any]]:
    """201 with the new position; a repeated `id` from the same sender answers 200 with the first."""
    name = parse_stream(stream)
    who = await principal_of(request)
    require_csrf(request, who)
    body = read_body(request)
    data = decoded(name, body.data)
    await check_client_publish(who, name, data)
    take_publish(who.sender_key, is_backend_publisher(who, name))
    done = await apublish(name.full, body.data, who.sender, id=body.id)
    announce(name, data, who, done, site_of(request))
    return (200 if done.duplicate else 201), {"stream": done.stream, "seq": done.seq, "epoch": done.epoch}


@api.post(
    "/messages",
    response={200: BatchOut, 413: ErrorOut, **ERRORS},
    openapi_extra=json_body(BATCH_SCHEMA),
    summary="Publish many messages at once",
)
async def publish_batch(request: HttpRequest) -> tuple[int, dict[str, Any]]:
    """Each item published as a single publish would be, in order, with its own rights,
    idempotency and rate (a batch of K counts K); a body not of this shape publishes nothing.
    The items that pass their checks are stored in one pipelined round trip; an edit or
    a deletion is checked only after the items before it are stored (it may target one)."""
    who = await principal_of(request)
    require_csrf(request, who)
    body = decode_body(request, _batch_decoder, MAX_BATCH_BODY)
    site = site_of(request)
    results: list[dict[str, Any] | None] = [None] * len(body.messages)
    pending: list[tuple[int, StreamName, Any, _BatchItem]] = []
    down: list[Unavailable] = []  # Redis out of reach: the rest would each wait for it

    async def store_pending() -> None:
        outcomes = await apublish_each([Outgoing(name.full, item.data, item.id) for _, name, _, item in pending],
                                       who.sender)
        for (n, name, data, _), outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, RealtimeError):
                results[n] = error_object(outcome)
                if isinstance(outcome, Unavailable) and not down:
                    down.append(outcome)
            else:
                announce(name, data, who, outcome, site)
                results[n] = {"stream": outcome.stream, "seq": outcome.seq, "epoch": outcome.epoch}
        pending.clear()

    for n, item in enumerate(body.messages):
        if down:
            results[n] = error_object(down[0])
            continue
        try:
            name = parse_stream(item.stream)
            data = decoded(name, item.data)
            if pending and change_target(name, data) is not None:
                await store_pending()
                if down:
                    results[n] = error_object(down[0])
                    continue
            await check_client_publish(who, name, data)
            take_publish(who.sender_key, is_backend_publisher(who, name))
        except Unavailable as exc:
            down.append(exc)
            results[n] = error_object(exc)
            continue
        except RealtimeError as exc:
            results[n] = error_object(exc)
            continue
        pending.append((n, name, data, item))
    if pending:
        await store_pending()
    return 200, {"results": results}


def site_of(request: HttpRequest) -> str:
    """The site's address as this client reached it, for links in notifications."""
    return str(request.build_absolute_uri("/")).rstrip("/")


class OccupancyOut(Schema):
    stream: str
    connections: int = Field(..., description="connections subscribed now, on all server processes")
    users: int = Field(..., description="distinct signed-in users among them")


@api.get("/streams/{stream}/occupancy", response={200: OccupancyOut, **ERRORS}, summary="How many are here now")
async def read_occupancy(request: HttpRequest, stream: StreamPath) -> dict[str, Any]:
    """Figures may lag the truth by a second or two; the rights are those of reading."""
    name = parse_stream(stream)
    who = await principal_of(request)
    await check_read(who, name)
    hub = await runtime.current().hub()
    ((connections, users),) = await hub.occupancy.figures([name.full])
    return {"stream": name.full, "connections": connections, "users": users}


@api.get(
    "/streams/{stream}/messages",
    response={200: MessagesOut, **ERRORS},
    summary="Read a stream: its backlog, or older pages from the archive",
)
async def read_messages(
    request: HttpRequest,
    stream: StreamPath,
    since: Annotated[int | None, Query(None, ge=0, le=MAX_SEQ, description="the last seq the client has")] = None,
    before: Annotated[
        int | None,
        Query(None, ge=1, le=MAX_SEQ, description="extension: messages older than this seq, newest first"),
    ] = None,
    epoch: Annotated[
        str | None,
        Query(None, description="the epoch of `since` or `before`; with `before`, the current epoch when left out"),
    ] = None,
    limit: Annotated[
        int | None,
        Query(None, ge=1, description="at most this many (default 100), capped by the server; with `before`, at most the cap"),
    ] = None,
) -> dict[str, Any]:
    """With `since`: up to `limit` messages after it, from the archive where the backlog no
    longer has them, or `recovered: false` and none when they are not all kept. With
    `before`: a page of older messages (docs/protocol.md). Without either: the
    last `limit` kept messages."""
    name = parse_stream(stream)
    who = await principal_of(request)
    await check_read(who, name)
    if before is not None:
        if since is not None:
            raise BadRequest("since and before cannot be combined: since reads forward, before reads back")
        if limit is not None and limit > settings.RT_HTTP_LIMIT_CAP:
            raise BadRequest(f"limit: at most {settings.RT_HTTP_LIMIT_CAP} with before")
    most = min(limit or DEFAULT_LIMIT, settings.RT_HTTP_LIMIT_CAP)
    if before is not None:
        return await _read_before(name, before, epoch, most)
    # A position is the pair: `since` without `epoch` cannot be honoured in full, so it is
    # answered like a stale epoch (`recovered: false`); `epoch` alone is ignored.
    return await _read(name, most, Since(epoch or "", since) if since is not None else None)


async def _read(name: StreamName, limit: int, since: Since | None) -> dict[str, Any]:
    backlog = runtime.current().backlog
    # Cut in Redis by frame bytes: a message object is its frame less "type", never larger.
    budget = settings.RT_HTTP_READ_BYTES
    if since is None:
        got = await backlog.read(name.full, most=limit, budget=budget)
        recovered, frames, latest = True, got.frames, got.latest
    else:
        got = await backlog.read(name.full, first=since.seq + 1, last=since.seq + limit, budget=budget, keep_oldest=True)
        start = plan_since(since, got)
        if not start.recovered and _archive_can_answer(name, since, got.epoch, got.latest):
            return await _read_since_from_archive(name, since, got, limit)
        recovered, frames, latest = start.recovered, start.frames, start.position
    messages = [message_object(text) for text in frames]
    return {
        "stream": name.full,
        "epoch": got.epoch,
        "seq": latest,
        "recovered": recovered,
        # With `since` the reader pages on forward from the last one; without, back with
        # `before` from the first one: the read kept the end each pages on from.
        "messages": messages,
    }


def within_budget(messages: list[dict[str, Any]], *, keep_newest: bool) -> list[dict[str, Any]]:
    """At most RT_HTTP_READ_BYTES of encoded messages, and at least one: a read of
    `limit=1000` large messages stops there and the caller pages on. `messages` are in
    the answer's order; `keep_newest` keeps its end, else its start."""
    budget = settings.RT_HTTP_READ_BYTES
    ordered = reversed(messages) if keep_newest else iter(messages)
    kept: list[dict[str, Any]] = []
    for message in ordered:
        budget -= len(encode_json(message))
        if budget < 0 and kept:
            break
        kept.append(message)
    if len(kept) == len(messages):
        return messages
    return kept[::-1] if keep_newest else kept


def _archive_can_answer(name: StreamName, since: Since, epoch: str, latest: int) -> bool:
    """A `since` of the current epoch that the backlog has dropped, on an archived kind."""
    return name.kind in ARCHIVED_KINDS and since.epoch == epoch and since.seq < latest


async def _read_since_from_archive(name: StreamName, since: Since, got: Range, limit: int) -> dict[str, Any]:
    """Over HTTP only: the part the backlog (`got`, read from `since`) dropped comes from
    the archive; `recovered` only when every message after `since` is there (else none,
    as docs/protocol.md wants)."""
    found = await continue_from_archive(name.full, since.seq, got, limit)
    return {
        "stream": name.full,
        "epoch": found.epoch,
        "seq": found.latest,
        "recovered": found.recovered,
        "messages": within_budget(found.messages, keep_newest=False) if found.recovered else [],
    }


async def _read_before(name: StreamName, before: int, epoch: str | None, limit: int) -> dict[str, Any]:
    """A page of older messages; `recovered` says whether it has no hole below `before`."""
    page = await older_page(name.full, before, epoch, limit)
    if not page.known:
        raise BadRequest(f"epoch: {epoch!r} is not an epoch of {name.full}")
    return {
        "stream": name.full,
        "epoch": page.epoch,
        "seq": page.latest,
        "recovered": page.contiguous,
        "messages": within_budget(page.messages, keep_newest=False),  # newest first: keep the start
    }


def _mount_groups() -> None:
    from .groups_api import moderation, router

    api.add_router("/groups", router)
    api.add_router("/streams", moderation)


_mount_groups()


def add_api_router(prefix: str, router: Any) -> None:
    """Mount an app's ninja Router under /api/<prefix> (public: the core never imports apps)."""
    api.add_router(prefix, router)
