"""Who may do what (docs/protocol.md "Streams" and "Tokens"): credentials and the rights table.

Credentials, in the order checked: a token (verified with PyJWT, HS256 only, `exp`
required), then the Django session, honoured only from an acceptable `Origin` on the
WebSocket (the CSRF token does the same job over HTTP). A token never carries staff
rights, so checking one needs no database.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import SplitResult, urlsplit

import jwt
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

from .errors import Unauthorized
from .names import StreamName
from .sender import Sender


class Via(enum.Enum):
    TOKEN = "token"
    SESSION = "session"
    ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class Principal:
    """The identity behind a connection or request, and its grants."""

    via: Via
    user_id: str | None = None
    name: str | None = None
    is_staff: bool = False
    subs: tuple[str, ...] = ()
    pubs: tuple[str, ...] = ()
    sender_key: str = field(default="anonymous")
    #: A token's `exp` (seconds since the epoch): the connection stops reading then.
    expires_at: float | None = None

    @property
    def signed_in(self) -> bool:
        return self.user_id is not None

    @property
    def sender(self) -> Sender:
        return Sender(key=self.sender_key, id=self.user_id, name=self.name)


ANONYMOUS = Principal(Via.ANONYMOUS)


def verify_token(token: str) -> Principal:
    """A Principal from a JWT, or Unauthorized (malformed, badly signed, expired, no exp)."""
    try:
        claims = jwt.decode(
            token, settings.RT_TOKEN_SECRET, algorithms=["HS256"], options={"require": ["exp"]}
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired") from None
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"bad token: {exc}") from None
    sub = claims.get("sub")
    if isinstance(sub, int) and not isinstance(sub, bool):
        sub = str(sub)
    if sub is not None and not (isinstance(sub, str) and sub):
        raise Unauthorized("bad token: 'sub' must be a non-empty string")
    name = claims.get("name")
    if name is not None and not isinstance(name, str):
        raise Unauthorized("bad token: 'name' must be a string")
    subs, pubs = _patterns(claims, "subs"), _patterns(claims, "pubs")
    jti = claims.get("jti")
    if sub is not None:
        key = f"u:{sub}"
    elif isinstance(jti, str) and jti:
        key = f"j:{jti}"
    else:
        key = f"t:{token}"
    return Principal(
        Via.TOKEN,
        user_id=sub,
        name=name if name is not None else sub,
        subs=subs,
        pubs=pubs,
        sender_key=key,
        expires_at=float(claims["exp"]),  # required, and checked numeric by PyJWT
    )


def _patterns(claims: dict[str, Any], key: str) -> tuple[str, ...]:
    value = claims.get(key, [])
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise Unauthorized(f"bad token: '{key}' must be a list of strings")
    return tuple(value)


def from_user(user: Any) -> Principal:
    """The Principal of a Django user (from a session), anonymous when not signed in."""
    if user is None or not user.is_authenticated:
        return ANONYMOUS
    return Principal(
        Via.SESSION,
        user_id=str(user.pk),
        name=user.get_username(),
        is_staff=bool(user.is_staff),
        sender_key=f"u:{user.pk}",
    )


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    # `*` matches any run of characters; nothing else is special.
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")) + r"\Z", re.DOTALL)


def matches(patterns: tuple[str, ...], stream: str) -> bool:
    return any(_compiled(p).match(stream) for p in patterns)


# The rights table. Each kind: (who may subscribe, who may publish) beyond token grants.
def can_subscribe(who: Principal, stream: StreamName) -> bool:
    if matches(who.subs, stream.full):
        return True
    if stream.kind in ("room", "live"):
        return True
    if stream.kind == "user":
        return who.user_id == stream.name
    if stream.kind == "staff":  # operators' figures (realtime/stats.py): staff sessions only
        return who.is_staff
    return False


def is_backend_publisher(who: Principal, stream: StreamName) -> bool:
    """A `pubs` grant covers the stream: a site's backend, with its own publish rate."""
    return matches(who.pubs, stream.full)


def can_publish(who: Principal, stream: StreamName) -> bool:
    if matches(who.pubs, stream.full):
        return True
    if stream.kind == "room":
        return who.signed_in
    if stream.kind in ("live", "user"):
        return who.is_staff
    return False


def origin_allowed(origin: str | None, host: str | None) -> bool:
    """Whether a session cookie sent with this `Origin` is a credential: the page is on
    this very site (the Origin's host and port are the request's `Host`, itself one of
    ALLOWED_HOSTS), or its origin is listed in CSRF_TRUSTED_ORIGINS.

    Stricter than Channels' AllowedHostsOriginValidator, which compares host names only:
    browsers send a host's cookies to every port of it, so another app on the same host
    (say a page on :8001) would otherwise act with the user's session. The scheme is not
    compared: behind a proxy that ends TLS the server sees ws:// for an https:// page."""
    if not origin or not host:
        return False
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    if parts.netloc and parts.netloc.lower() == host.lower():
        domain, _port = split_domain_port(host)
        allowed = settings.ALLOWED_HOSTS or (["localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])
        return bool(domain) and validate_host(domain, allowed)
    return any(_trusted(parts, trusted) for trusted in settings.CSRF_TRUSTED_ORIGINS)


def _trusted(origin: SplitResult, trusted: str) -> bool:
    """Django's CSRF_TRUSTED_ORIGINS rule: the same scheme, and the host or a `*.` subdomain."""
    rule = urlsplit(trusted)
    return origin.scheme == rule.scheme and is_same_domain(origin.netloc.lower(), rule.netloc.lower().lstrip("*"))


__all__ = ["ANONYMOUS", "Principal", "Via", "can_publish", "can_subscribe", "from_user", "origin_allowed", "verify_token"]
