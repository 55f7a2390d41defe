"""The checks every client publish passes, on the WebSocket and over HTTP alike: rights,
then, for an edit or a deletion, its target (docs/protocol.md 1.1, "Edits and deletions");
and the signal apps hear once a person's message is stored (the chat notifies mentions
and direct messages from it).

Server-side callers of `publish`/`apublish` are trusted and skip both.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
from django.dispatch import Signal

from .auth import Principal
from .errors import BadRequest
from .history import find_message
from .names import CHAT_KINDS, StreamName
from .publishing import Published
from .rights import change_target, check_change, check_publish

log = logging.getLogger("realtime.gate")

#: Sent (asynchronously, after the ack) for each new message a person publishes on a
#: `room:`, `group:` or `dm:` stream. Arguments: stream (StreamName), data (decoded),
#: who (Principal), published (Published), site ("https://host" the client used).
message_published = Signal()

_tasks: set[asyncio.Task[None]] = set()


def decoded(stream: StreamName, data: Any) -> Any:
    """`data` as Python values where the rules need to look inside (chat kinds only)."""
    if stream.kind not in CHAT_KINDS or not isinstance(data, msgspec.Raw):
        return data
    try:
        return msgspec.json.decode(data)
    except (msgspec.DecodeError, RecursionError):
        raise BadRequest("data is not JSON") from None


async def check_client_publish(who: Principal, stream: StreamName, data: Any) -> None:
    """Forbidden or BadRequest, else nothing: `who` may publish `data` on `stream` now."""
    standing = await check_publish(who, stream)
    seq = change_target(stream, data)
    if seq is not None:
        check_change(who, standing, await find_message(stream.full, seq), seq)


def announce(stream: StreamName, data: Any, who: Principal, published: Published, site: str) -> None:
    """Send `message_published` in the background: notifications never delay the ack."""
    if stream.kind not in CHAT_KINDS or published.duplicate or not message_published.receivers:
        return

    async def send() -> None:
        try:
            await message_published.asend(
                sender=StreamName, stream=stream, data=data, who=who, published=published, site=site
            )
        except Exception:
            log.exception("a message_published receiver failed for %s seq %d", stream.full, published.seq)

    task = asyncio.get_running_loop().create_task(send())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
