"""The messaging core: streams with a delivery promise over WebSocket and HTTP.

Other code (chat, live, feed, a team's own apps) uses only the names below; everything
else is internal and may change. The HTTP toolkit is for endpoints mounted on the API
with `add_api_router`: they get the same credentials, CSRF rule, body limits and error
shape as the core's own.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names, typed, for mypy and editors
    from .api import add_api_router
    from .auth import Principal, can_publish, can_subscribe
    from .backlog import Backlog
    from .errors import BadRequest, Forbidden, RateLimited, RealtimeError
    from .gate import message_published
    from .http import ERRORS, MAX_SEQ, ErrorOut, decode_body, json_body, principal_of, require_csrf
    from .names import CHAT_KINDS, NAME_PATTERN, StreamName, dm_pair, dm_stream, parse_stream
    from .presence import present_user_ids
    from .publishing import Published, apublish, publish, send_ephemeral
    from .ratelimit import KeyedBuckets
    from .rights import may_read
    from .runtime import current_backlog
    from .sender import SERVER, Sender

#: Each public name and the module that defines it.
_PUBLIC = {
    # publishing
    "Published": "publishing",
    "Sender": "sender",
    "SERVER": "sender",
    "apublish": "publishing",
    "publish": "publishing",
    "send_ephemeral": "publishing",
    "message_published": "gate",
    # names, rights and errors
    "NAME_PATTERN": "names",
    "StreamName": "names",
    "parse_stream": "names",
    "CHAT_KINDS": "names",
    "dm_pair": "names",
    "dm_stream": "names",
    "may_read": "rights",
    "present_user_ids": "presence",
    "Principal": "auth",
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
}

__all__ = [
    "CHAT_KINDS", "present_user_ids", "dm_pair", "dm_stream", "may_read", "message_published", "send_ephemeral",
    "ERRORS", "MAX_SEQ", "NAME_PATTERN", "SERVER", "Backlog", "BadRequest", "ErrorOut", "Forbidden",
    "KeyedBuckets", "Principal", "Published", "RateLimited", "RealtimeError", "Sender", "StreamName",
    "add_api_router", "apublish", "can_publish", "can_subscribe", "current_backlog", "decode_body", "json_body",
    "parse_stream", "principal_of", "publish", "require_csrf",
]


def __getattr__(name: str) -> Any:
    # Lazy, so that importing `realtime` does not need configured settings.
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(name)
    return getattr(import_module(f".{module}", __name__), name)
