"""The messaging core: streams with a delivery promise over WebSocket and HTTP.

Other code (chat, live, feed, ops, a team's own apps) uses only the names below, the
`groups` operations and the database models of `realtime.models`; everything else is
internal and may change (tests/test_boundaries.py holds the apps to it). The HTTP
toolkit is for endpoints mounted on the API with `add_api_router`: they get the same credentials, CSRF rule, body limits and error
shape as the core's own.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names, typed, for mypy and editors
    from . import groups
    from .api import add_api_router
    from .auth import Principal, can_publish, can_subscribe, from_user
    from .backlog import Backlog
    from .errors import BadRequest, Forbidden, RateLimited, RealtimeError
    from .gate import message_published
    from .http import ERRORS, MAX_SEQ, ErrorOut, decode_body, json_body, principal_of, require_csrf
    from .names import CHAT_KINDS, CHAT_STREAM_PATTERN, NAME_PATTERN, StreamName, dm_pair, dm_stream, parse_stream
    from .presence import present_user_ids
    from .publishing import Outgoing, Published, apublish, apublish_many, publish, publish_many, send_ephemeral
    from .ratelimit import KeyedBuckets
    from .redis_clients import sync_client
    from .rights import may_read
    from .runtime import current_backlog
    from .sender import SERVER, Sender
    from .stats import STATS_STREAM

#: Each public name and the module that defines it.
_PUBLIC = {
    # publishing
    "Published": "publishing",
    "Sender": "sender",
    "SERVER": "sender",
    "apublish": "publishing",
    "publish": "publishing",
    "apublish_many": "publishing",
    "publish_many": "publishing",
    "Outgoing": "publishing",
    "send_ephemeral": "publishing",
    "message_published": "gate",
    # names, rights and errors
    "NAME_PATTERN": "names",
    "StreamName": "names",
    "parse_stream": "names",
    "CHAT_KINDS": "names",
    "CHAT_STREAM_PATTERN": "names",
    "dm_pair": "names",
    "dm_stream": "names",
    "may_read": "rights",
    "present_user_ids": "presence",
    "Principal": "auth",
    "from_user": "auth",
    "can_subscribe": "auth",
    "can_publish": "auth",
    "RealtimeError": "errors",
    "BadRequest": "errors",
    "Forbidden": "errors",
    "RateLimited": "errors",
    # the HTTP toolkit
    "ERRORS": "http",
    "ErrorOut": "http",
    "MAX_SEQ": "http",
    "decode_body": "http",
    "json_body": "http",
    "principal_of": "http",
    "require_csrf": "http",
    "KeyedBuckets": "ratelimit",
    "add_api_router": "api",
    # reading streams
    "Backlog": "backlog",
    "current_backlog": "runtime",
    # the product's Redis (REDIS_URL or Sentinel), for an app's own keys
    "sync_client": "redis_clients",
    # the staff-only stream of the live stats page
    "STATS_STREAM": "stats",
}
#: Public modules: a namespace of operations (`groups.create`, `groups.add`, ...).
_MODULES = {"groups"}

__all__ = [
    "CHAT_KINDS", "present_user_ids", "dm_pair", "dm_stream", "may_read", "message_published", "send_ephemeral",
    "ERRORS", "MAX_SEQ", "NAME_PATTERN", "SERVER", "Backlog", "BadRequest", "ErrorOut", "Forbidden",
    "KeyedBuckets", "Principal", "Published", "RateLimited", "RealtimeError", "Sender", "StreamName",
    "add_api_router", "apublish", "can_publish", "can_subscribe", "current_backlog", "decode_body", "json_body",
    "parse_stream", "principal_of", "publish", "require_csrf", "Outgoing", "apublish_many", "publish_many",
    "CHAT_STREAM_PATTERN", "STATS_STREAM", "from_user", "groups", "sync_client",
]


def __getattr__(name: str) -> Any:
    # Lazy, so that importing `realtime` does not need configured settings.
    if name in _MODULES:
        return import_module(f".{name}", __name__)
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(name)
    return getattr(import_module(f".{module}", __name__), name)
