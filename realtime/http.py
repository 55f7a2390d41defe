"""The public HTTP toolkit for endpoints on the API, the core's and other apps' alike
(feed/api.py): credentials, CSRF, body decoding and the one error shape of
docs/protocol.md "HTTP". Apps use these through `realtime`'s public names.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

import msgspec
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from ninja import Schema
from ninja.utils import check_csrf

from .auth import ANONYMOUS, Principal, Via, from_user, origin_allowed, verify_token
from .errors import BadRequest, Forbidden, RateLimited, RealtimeError, TooLarge, Unauthorized
from .limits import MAX_DEPTH

BodyT = TypeVar("BodyT")
MAX_SEQ = 2**53 - 1  # seqs stay exact in Lua's doubles and in JavaScript


class ErrorBody(Schema):
    code: str
    message: str
    retry_after: float | None = None


class ErrorOut(Schema):
    error: ErrorBody


ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 503: ErrorOut}

def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra` documenting a required JSON body (bodies are decoded with msgspec,
    so ninja does not see them)."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def error_object(exc: RealtimeError) -> dict[str, Any]:
    """`{"error": {"code", "message"}}`, with `retry_after` for a rate limit."""
    body: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if isinstance(exc, RateLimited):
        body["retry_after"] = exc.retry_after
    return {"error": body}


def error_response(exc: RealtimeError) -> JsonResponse:
    """The one error shape; a 429 also says when to retry, in the body and the header."""
    response = JsonResponse(error_object(exc), status=exc.status)
    if isinstance(exc, RateLimited):
        response["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return response


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


def decode_body(request: HttpRequest, decoder: msgspec.json.Decoder[BodyT], limit: int | None = None) -> BodyT:
    """The JSON body decoded by `decoder`, refused with 413 before it is read when it says
    it is over `limit` (default RT_MAX_FRAME; Django's own limit would answer 400 in its
    own shape); a body of the wrong shape is `bad_request`. Other apps' endpoints use it too."""
    limit = limit or settings.RT_MAX_FRAME
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
    except RecursionError:
        raise BadRequest(f"body nested too deep: data may nest at most {MAX_DEPTH} levels") from None
