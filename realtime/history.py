"""Reading history past the backlog: the Redis backlog while it has the messages, the
database archive (realtime/archive.py) beyond it.

Guarantee at the boundary: the backlog is read first and tells which seq it starts at;
the database is then asked only for seqs below that one. A message pushed out of the
backlog between the two reads was returned from the backlog already, so a page has no
duplicate, and no hole as long as the archiver has caught up with what the backlog
dropped (a message trimmed but still queued is missing until it is archived).
Messages are PROTOCOL.md `message` objects without "type".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from . import runtime
from .models import ArchivedMessage
from .names import parse_stream

Message = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SinceResult:
    """Messages after a position, oldest first; `recovered` as in PROTOCOL.md."""

    epoch: str
    latest: int
    recovered: bool
    messages: list[Message]


def _message(frame: str) -> Message:
    message: Message = msgspec.json.decode(frame)
    message.pop("type", None)
    return message


async def _archived(stream: str, epoch: str, low: int, high: int, limit: int, *, newest_first: bool) -> list[Message]:
    """Archived messages with low <= seq < high, at most `limit`, nearest to `high` or `low` first."""
    if limit <= 0 or high <= low:
        return []
    rows = ArchivedMessage.objects.filter(stream=stream, epoch=epoch, seq__gte=low, seq__lt=high)
    rows = rows.order_by("-seq" if newest_first else "seq")[:limit]
    return [row.as_message() async for row in rows]


async def page_before(stream: str, before: int | None, epoch: str | None, limit: int) -> tuple[str, list[Message]]:
    """Up to `limit` messages with seq < `before` (None: from the latest), newest first.

    `epoch` None means the stream's current epoch; an older epoch is served from the
    archive alone. Returns (epoch of the messages, messages). The next page is asked with
    `before` = the last (oldest) seq returned and the same epoch; an empty page is the start.
    Raises BadRequest for a bad stream name, Unavailable when Redis is down.
    """
    name = parse_stream(stream).full
    limit = max(0, limit)
    backlog = runtime.current().backlog
    if before is None:
        found = await backlog.read(name, first=1, last=-1, most=max(limit, 1))
        top = found.latest + 1
    else:
        found = await backlog.read(name, first=max(1, before - max(limit, 1)), last=max(0, before - 1))
        top = before
    if limit == 0 or top <= 1:
        return (epoch or found.epoch), []
    if epoch is not None and epoch != found.epoch:
        return epoch, await _archived(name, epoch, 1, top, limit, newest_first=True)
    newest = [_message(frame) for frame in reversed(found.frames)]  # seqs found.last .. found.first
    if newest and newest[0]["seq"] >= top:  # never true for a well-formed read; kept as a guard
        newest = [m for m in newest if m["seq"] < top]
    lowest_in_backlog = min(top, found.first)
    older = await _archived(
        name, found.epoch, max(1, top - limit), lowest_in_backlog, limit - len(newest), newest_first=True
    )
    return found.epoch, newest + older


async def since_from_archive(stream: str, since_seq: int, epoch: str, limit: int) -> SinceResult:
    """Up to `limit` messages after (`epoch`, `since_seq`), oldest first: from the archive
    for the part the backlog has dropped, then from the backlog.

    `recovered` is true when the epoch is the current one and the messages follow
    `since_seq` without a hole; otherwise the caller answers `recovered: false` as before
    (an older epoch has no continuation in the current one).
    """
    name = parse_stream(stream).full
    limit = max(0, limit)
    backlog = runtime.current().backlog
    found = await backlog.read(name, first=since_seq + 1, last=since_seq + max(limit, 1))
    if epoch != found.epoch:
        return SinceResult(found.epoch, found.latest, False, [])
    if limit == 0 or since_seq >= found.latest:
        return SinceResult(found.epoch, found.latest, True, [])
    archived = await _archived(name, epoch, since_seq + 1, found.first, limit, newest_first=False)
    messages = (archived + [_message(frame) for frame in found.frames])[:limit]
    expected = range(since_seq + 1, since_seq + 1 + len(messages))
    contiguous = all(m["seq"] == s for m, s in zip(messages, expected, strict=True))
    return SinceResult(found.epoch, found.latest, contiguous and bool(messages), messages)
