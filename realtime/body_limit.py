"""Request bodies over the limit are refused with 413 before they are read.

Django's ASGI handler reads a whole body (spooling it to disk past 2.5 MB) before any
view can look at it, so a view's own size check comes too late: an anonymous 30 MB
chunked POST was written to disk first. This wraps the HTTP app: a `Content-Length`
over the limit is answered at once, and a body that streams (chunked, or lying about
its length) is cut off as soon as it passes the limit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings

from .errors import TooLarge
from .protocol import encode_json

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

#: POST /api/messages may carry up to 1 MiB (docs/protocol.md 1.1 "Many messages at once").
BATCH_PATH = "/api/messages"
BATCH_LIMIT = 1024 * 1024


def body_limit(path: str) -> int:
    """Bytes a request to `path` may send: the API's frame limit (the batch endpoint
    its own), Django's DATA_UPLOAD_MAX_MEMORY_SIZE for pages and forms."""
    if path == BATCH_PATH:
        return BATCH_LIMIT
    if path.startswith("/api/"):
        return int(settings.RT_MAX_FRAME)
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or BATCH_LIMIT)


def refusal(limit: int) -> tuple[int, bytes]:
    """The status and JSON body that refuse a body over `limit` bytes (the API's error shape)."""
    error = TooLarge(f"body over {limit} bytes")
    return error.status, encode_json({"error": {"code": error.code, "message": error.message}})


class _Cut(Exception):
    """The body went past its limit while it streamed in."""


class BodyLimit:
    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope.get("path", ""))
        declared = dict(scope.get("headers", [])).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(send, limit)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _Cut
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _Cut:
            if not started:
                await self._refuse(send, limit)

    @staticmethod
    async def _refuse(send: Send, limit: int) -> None:
        status, body = refusal(limit)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close")],
            }
        )
        await send({"type": "http.response.body", "body": body})
