"""The error hierarchy, one class per `error` code of docs/protocol.md ("Server to client").

    RealtimeError (code, message)
    ├── BadRequest      bad_request   400
    ├── Unauthorized    unauthorized  401
    ├── Forbidden       forbidden     403
    ├── NotFound        not_found     404  (HTTP only: a path the API does not have, a user who does not exist)
    ├── Conflict        conflict      409  (HTTP only: a group name another owns)
    ├── TooLarge        too_large     413
    ├── RateLimited     rate_limited  429  (+ retry_after seconds)
    └── Unavailable     unavailable   503  (Redis cannot be reached)

Library errors are mapped onto these at the boundary (redis-py -> Unavailable, PyJWT ->
Unauthorized, msgspec -> BadRequest) and never leak to clients.
"""

from __future__ import annotations


class RealtimeError(Exception):
    """Base: carries the protocol `code`, the HTTP `status` and a human `message`."""

    code = "error"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class BadRequest(RealtimeError):
    """Not JSON, not an object, unknown `type`, a bad field or a bad stream name."""

    code = "bad_request"
    status = 400


class Unauthorized(RealtimeError):
    """A token that is present but malformed, badly signed or expired."""

    code = "unauthorized"
    status = 401


class Forbidden(RealtimeError):
    """No right to this stream (said the same whether or not the stream exists)."""

    code = "forbidden"
    status = 403


class NotFound(RealtimeError):
    """A path the HTTP API does not have, or a user (to add to a group, to mute) who does not exist."""

    code = "not_found"
    status = 404


class Conflict(RealtimeError):
    """A name already taken by someone else (docs/protocol.md 1.1, `PUT /api/groups/NAME`)."""

    code = "conflict"
    status = 409


class TooLarge(RealtimeError):
    """A frame or body over the size limit."""

    code = "too_large"
    status = 413


class RateLimited(RealtimeError):
    """Too many publishes; `retry_after` says when to try again, in seconds."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(RealtimeError):
    """Redis cannot be reached: nothing was stored, retry later."""

    code = "unavailable"
    status = 503

    @classmethod
    def from_exc(cls, exc: BaseException) -> RealtimeError:
        """The error a client gets for a failed Redis (or channel layer) call: a
        RealtimeError raised below passes through unchanged, anything else says its class."""
        if isinstance(exc, RealtimeError):
            return exc
        return cls(f"Redis cannot be reached: {exc.__class__.__name__}")
