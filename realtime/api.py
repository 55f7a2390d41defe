"""The HTTP API (PROTOCOL.md "HTTP"): publish to a stream and read its backlog.

Thin by design, like the consumer: find the credentials, check rights with the same
table as the WebSocket (`auth.can_subscribe` / `auth.can_publish`), then call
`apublish` or `Backlog.read`. Every error is `{"error": {"code", "message"}}` with the
status of its `RealtimeError` class. A read with `since` follows the delivery promise:
messages after `since` with no holes, or `recovered: false` and none, never a silent skip.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Annotated, Any, TypeVar

import msgspec
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import Field, NinjaAPI, Path, Query, Schema
from ninja.errors import ValidationError
from ninja.utils import check_csrf

from . import runtime
from .auth import ANONYMOUS, Principal, Via, can_publish, can_subscribe, from_user, origin_allowed, verify_token
from .backlog import Range
from .errors import BadRequest, Forbidden, RateLimited, RealtimeError, TooLarge, Unauthorized
from .history import continue_from_archive, message_object, older_page
from .names import KINDS, NAME_PATTERN, StreamName, parse_stream
from .ordering import plan_since
from .protocol import ClientId, Since
from .publishing import ARCHIVED_KINDS, apublish
from .ratelimit import TokenBucket

STREAM_PATTERN = r"^(%s):%s$" % ("|".join(KINDS), NAME_PATTERN)
MAX_SEQ = 2**53 - 1  # seqs stay exact in Lua's doubles and in JavaScript
DEFAULT_LIMIT = 100
BodyT = TypeVar("BodyT")


# -- Schemas: the OpenAPI document's view of the wire contract ------------------------


class ErrorBody(Schema):
    code: str
    message: str
    retry_after: float | None = None


class ErrorOut(Schema):
    error: ErrorBody


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

StreamPath = Annotated[str, Path(..., pattern=STREAM_PATTERN, description="a stream name, KIND:NAME")]
ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 503: ErrorOut}

api = NinjaAPI(
    title="Realtime streams",
    version="1",
    description="Publish to and read the streams of PROTOCOL.md over HTTP.",
    urls_namespace="realtime-api",
)


# -- Errors -------------------------------------------------------------------------


def error_response(exc: RealtimeError) -> JsonResponse:
    """The one error shape; a 429 also says when to retry, in the body and the header."""
    body: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if isinstance(exc, RateLimited):
        body["retry_after"] = exc.retry_after
    response = JsonResponse({"error": body}, status=exc.status)
    if isinstance(exc, RateLimited):
        response["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return response


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


# -- Credentials and rights ---------------------------------------------------------


async def principal_of(request: HttpRequest) -> Principal:
    """A bearer token, else the session (only from our own pages: no Origin, or an allowed one)."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <token>'")
        return verify_token(token.strip())
    origin = request.headers.get("Origin")
    if origin is not None and not origin_allowed(origin, request.headers.get("Host")):
        return ANONYMOUS  # a session cookie from a foreign page is not a credential
    return from_user(await request.auser())


def require_csrf(request: HttpRequest, who: Principal) -> None:
    """A session is a credential for POST only with Django's CSRF token; a token needs none."""
    if who.via is Via.SESSION and check_csrf(request) is not None:
        raise Forbidden("CSRF token missing or incorrect")


class SenderBuckets:
    """Per-sender publish buckets of this process, the oldest forgotten past `size` senders."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self.buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, sender_key: str) -> None:
        bucket = self.buckets.pop(sender_key, None) or TokenBucket(
            settings.RT_PUBLISH_RATE, settings.RT_PUBLISH_BURST
        )
        self.buckets[sender_key] = bucket
        if len(self.buckets) > self.size:
            self.buckets.popitem(last=False)
        bucket.take_or_raise(f"{settings.RT_PUBLISH_RATE:g} publishes per second")


publish_buckets = SenderBuckets()


def decode_body(request: HttpRequest, decoder: msgspec.json.Decoder[BodyT]) -> BodyT:
    """The JSON body decoded by `decoder`, refused with 413 before it is read when it says
    it is too large (Django's own limit would answer 400 in its own shape); a body of the
    wrong shape is `bad_request`. Other apps' endpoints on this API use it too."""
    limit = settings.RT_MAX_FRAME
    declared = request.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"body over {limit} bytes")
    try:
        raw = request.body
    except RequestDataTooBig:
        raise TooLarge(f"body over {limit} bytes") from None
    if len(raw) > limit:
        raise TooLarge(f"body over {limit} bytes")
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"body: {exc}") from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None


def read_body(request: HttpRequest) -> _PublishBody:
    return decode_body(request, _body_decoder)


# -- Endpoints ----------------------------------------------------------------------


@api.post(
    "/streams/{stream}/messages",
    response={201: PublishedOut, 200: PublishedOut, 413: ErrorOut, 429: ErrorOut, **ERRORS},
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": PublishIn.model_json_schema()}}}
    },
    summary="Publish a message",
)
async def publish_message(request: HttpRequest, stream: StreamPath) -> tuple[int, dict[str, Any]]:
    """201 with the new position; a repeated `id` from the same sender answers 200 with the first."""
    name = parse_stream(stream)
    who = await principal_of(request)
    require_csrf(request, who)
    if not can_publish(who, name):
        raise Forbidden(f"no right to publish to {name.full}")
    body = read_body(request)
    publish_buckets.take(who.sender_key)
    done = await apublish(name.full, body.data, who.sender, id=body.id)
    return (200 if done.duplicate else 201), {"stream": done.stream, "seq": done.seq, "epoch": done.epoch}


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
    `before`: a page of older messages (docs/protocol-extensions.md). Without either: the
    last `limit` kept messages."""
    name = parse_stream(stream)
    who = await principal_of(request)
    if not can_subscribe(who, name):
        raise Forbidden(f"no right to read {name.full}")
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
    if since is None:
        got = await backlog.read(name.full, most=limit)
        recovered, frames, latest = True, got.frames, got.latest
    else:
        got = await backlog.read(name.full, first=since.seq + 1, last=since.seq + limit)
        start = plan_since(since, got)
        if not start.recovered and _archive_can_answer(name, since, got.epoch, got.latest):
            return await _read_since_from_archive(name, since, got, limit)
        recovered, frames, latest = start.recovered, start.frames, start.position
    return {
        "stream": name.full,
        "epoch": got.epoch,
        "seq": latest,
        "recovered": recovered,
        "messages": [message_object(text) for text in frames],
    }


def _archive_can_answer(name: StreamName, since: Since, epoch: str, latest: int) -> bool:
    """A `since` of the current epoch that the backlog has dropped, on an archived kind."""
    return name.kind in ARCHIVED_KINDS and since.epoch == epoch and since.seq < latest


async def _read_since_from_archive(name: StreamName, since: Since, got: Range, limit: int) -> dict[str, Any]:
    """Over HTTP only: the part the backlog (`got`, read from `since`) dropped comes from
    the archive; `recovered` only when every message after `since` is there (else none,
    as PROTOCOL.md wants)."""
    found = await continue_from_archive(name.full, since.seq, got, limit)
    return {
        "stream": name.full,
        "epoch": found.epoch,
        "seq": found.latest,
        "recovered": found.recovered,
        "messages": found.messages if found.recovered else [],
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
        "messages": page.messages,
    }
