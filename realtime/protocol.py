"""Frames in and out (docs/protocol.md "WebSocket"): decode and validate in one call, encode once.

Client frames are a msgspec tagged union on `type`; fields that docs/protocol.md does not name
are ignored. A publish's `data` is kept as raw JSON (`msgspec.Raw`) so that it is copied
into the outgoing `message` frame without being decoded and encoded again.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from .errors import BadRequest, RealtimeError
from .limits import MAX_DEPTH

ClientId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Seq = Annotated[int, msgspec.Meta(ge=0)]


class Since(msgspec.Struct, frozen=True):
    epoch: str
    seq: Seq


class Subscribe(msgspec.Struct, tag="subscribe", tag_field="type", frozen=True):
    stream: str
    history: Seq | None = None
    since: Since | None = None
    occupancy: bool = False  # 1.1: also send `occupancy` frames


class Unsubscribe(msgspec.Struct, tag="unsubscribe", tag_field="type", frozen=True):
    stream: str


class Publish(msgspec.Struct, tag="publish", tag_field="type", frozen=True):
    stream: str
    data: msgspec.Raw
    id: ClientId


class Ping(msgspec.Struct, tag="ping", tag_field="type", frozen=True):
    pass


class PresenceQuery(msgspec.Struct, tag="presence", tag_field="type", frozen=True):
    """Extension: who is here on a `room:` stream the connection is subscribed to."""

    stream: str


class Typing(msgspec.Struct, tag="typing", tag_field="type", frozen=True):
    """Extension: an ephemeral "is typing" signal, never stored."""

    stream: str


ClientFrame = Subscribe | Unsubscribe | Publish | Ping | PresenceQuery | Typing

_decoder = msgspec.json.Decoder(ClientFrame)
_loose = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


def decode_client_frame(text: str) -> ClientFrame:
    """Decode and validate one client frame, or raise BadRequest saying what is wrong."""
    try:
        frame: ClientFrame = _decoder.decode(text)
        return frame
    except msgspec.ValidationError as exc:
        raise BadRequest(_explain(str(exc))) from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest(f"nested too deep: data may nest at most {MAX_DEPTH} levels") from None


def _explain(detail: str) -> str:
    if "`$.type`" in detail and "Invalid value" in detail:
        return "unknown frame type " + detail.removeprefix("Invalid value ").split(" - ")[0]
    if detail.startswith("Object missing required field `type`"):
        return "a frame needs a string field 'type'"
    if detail.startswith("Expected `object`"):
        return "a frame must be a JSON object: " + detail
    return detail


def echo_fields(text: str) -> dict[str, str]:
    """`id` and `stream` of a frame that failed to decode, to echo them in the error."""
    try:
        raw = _loose.decode(text)
    except (msgspec.DecodeError, RecursionError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {k: raw[k] for k in ("id", "stream") if isinstance(raw.get(k), str) and len(raw[k]) <= 200}


def encode(obj: Any) -> str:
    """Encode a server frame (a dict of JSON values) to the text sent on the socket."""
    return _encoder.encode(obj).decode()


def encode_json(obj: Any) -> bytes:
    return _encoder.encode(obj)


def error_frame(exc: RealtimeError, *, id: str | None = None, stream: str | None = None) -> str:
    frame: dict[str, Any] = {"type": "error", "code": exc.code, "message": exc.message}
    if id is not None:
        frame["id"] = id
    if stream is not None:
        frame["stream"] = stream
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        frame["retry_after"] = retry_after
    return encode(frame)


def subscribed_frame(stream: str, epoch: str, seq: int, recovered: bool) -> str:
    return encode({"type": "subscribed", "stream": stream, "epoch": epoch, "seq": seq, "recovered": recovered})


def unsubscribed_frame(stream: str) -> str:
    return encode({"type": "unsubscribed", "stream": stream})


def ack_frame(id: str, stream: str, seq: int, epoch: str) -> str:
    return encode({"type": "ack", "id": id, "stream": stream, "seq": seq, "epoch": epoch})


PONG = encode({"type": "pong"})


class CloseCode:
    """WebSocket close codes (docs/protocol.md "Close codes").

    1000-1015 are RFC 6455's. 4000-4499: reconnect with backoff and recover with `since`.
    4500-4999: reconnecting the same way fails again.
    """

    NORMAL = 1000
    UNSUPPORTED_DATA = 1003  # a binary frame
    TOO_BIG = 1009  # over the hard limit; sent by the server itself
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TOO_SLOW = 4000  # fell too far behind to be buffered: reconnect and recover
    SIGNED_OUT = 4003  # the session's rights changed (logout, user removed): reconnect with the new ones
    BAD_TOKEN = 4501  # token malformed, badly signed or expired
    ABUSE = 4508  # a flood of bad frames, a frame far over the limit
