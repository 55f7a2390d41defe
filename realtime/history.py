"""Reading history past the backlog: the Redis backlog while it has the messages, the
database archive (realtime/archive.py) beyond it.

Guarantee at the boundary: the backlog is read first and tells which seq it starts at;
the database is then asked only for seqs below that one. A message pushed out of the
backlog between the two reads was returned from the backlog already, so a page has no
duplicate, and no hole as long as the archiver has caught up with what the backlog
dropped (a message trimmed but still queued is missing until it is archived).
Messages are docs/protocol.md `message` objects without "type".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec

from . import runtime
from .backlog import Range
from .limits import MAX_DEPTH, object_depth, too_deep
from .models import ArchivedMessage
from .names import parse_stream

Message = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SinceResult:
    """Messages after a position, oldest first; `recovered` as in docs/protocol.md."""

    epoch: str
    latest: int
    recovered: bool
    messages: list[Message]


_frame_decoder = msgspec.json.Decoder(dict[str, Any])
_sender_decoder = msgspec.json.Decoder(dict[str, str] | None)
# append.lua writes the head, and message_tail the ts first and the sender last.
_HEAD = re.compile(r'\{"type":"message","stream":"([^"]*)","seq":(\d+),"epoch":"([^"]*)","ts":(\d+)')
_SENDER = re.compile(r',"sender":(null|\{.*\})\}\Z', re.DOTALL)


def unreadable(message: Message, why: str) -> Message:
    """The entry served for a stored message that cannot be sent as it is (too deep: it was
    written before the depth limit): its position kept, `data` saying why."""
    return {**message, "data": {"unreadable": why}}


def message_object(frame: str) -> Message:
    """A stored `message` frame as an HTTP message object: the same fields, without `type`."""
    if too_deep(frame, MAX_DEPTH + 1):  # the frame itself is one level
        head, tail = _HEAD.match(frame), _SENDER.search(frame)
        stream, seq, epoch, ts = head.groups() if head else ("", "0", "", "0")
        sender = _sender_decoder.decode(tail.group(1)) if tail else None
        position = {"stream": stream, "seq": int(seq), "epoch": epoch, "ts": int(ts), "sender": sender}
        return unreadable(position, f"data nested more than {MAX_DEPTH} levels deep")
    message = _frame_decoder.decode(frame)
    message.pop("type", None)
    return message


def archived_message(row: ArchivedMessage) -> Message:
    """An archived row as an HTTP message object, or an `unreadable` entry for a too deep one."""
    message = row.as_message()
    if object_depth(message["data"]) > MAX_DEPTH:
        return unreadable(message, f"data nested more than {MAX_DEPTH} levels deep")
    return message


async def _archived(stream: str, epoch: str, low: int, high: int, limit: int, *, newest_first: bool) -> list[Message]:
    """Archived messages with low <= seq < high, at most `limit`, nearest to `high` or `low` first."""
    if limit <= 0 or high <= low:
        return []
    rows = ArchivedMessage.objects.filter(stream=stream, epoch=epoch, seq__gte=low, seq__lt=high)
    rows = rows.order_by("-seq" if newest_first else "seq")[:limit]
    return [archived_message(row) async for row in rows]


@dataclass(frozen=True, slots=True)
class Page:
    """Messages older than a position, newest first.

    `latest` is the highest seq of `epoch` (the counter for the current epoch, the highest
    archived seq for an older one); `known` is false for an epoch that is neither current
    nor in the archive. `contiguous` is false when a seq between `before` and the oldest
    message returned is missing (dropped from the backlog, not archived yet).
    """

    epoch: str
    latest: int
    known: bool
    contiguous: bool
    messages: list[Message]


async def _archived_latest(stream: str, epoch: str) -> int | None:
    row = await ArchivedMessage.objects.filter(stream=stream, epoch=epoch).order_by("-seq").afirst()
    return None if row is None else int(row.seq)


async def older_page(stream: str, before: int | None, epoch: str | None, limit: int) -> Page:
    """Up to `limit` messages with seq < `before` (None: from the latest), newest first:
    from the backlog while it has them, from the archive below its oldest kept seq.

    `epoch` None means the current epoch; an older one is served from the archive alone.
    A `before` past the latest seq reads from the latest. The next page is asked with
    `before` = the oldest seq returned and the same epoch; an empty page means nothing
    older is kept. Raises BadRequest for a bad stream name, Unavailable when Redis is down.
    """
    name = parse_stream(stream).full
    limit = max(0, limit)
    backlog = runtime.current().backlog
    # Counted back from `before - 1`, clamped by the script to the latest seq and to the
    # oldest one kept: one round trip whatever `before` is.
    last = -1 if before is None else max(0, before - 1)
    found = await backlog.read(name, first=1, last=last, most=max(limit, 1))
    if epoch is not None and epoch != found.epoch:
        latest = await _archived_latest(name, epoch)
        if latest is None:
            return Page(epoch, 0, False, True, [])
        top = latest + 1 if before is None else min(before, latest + 1)
        rows = await _archived(name, epoch, 1, top, limit, newest_first=True)
        return Page(epoch, latest, True, _contiguous_down(rows, top), rows)
    top = found.latest + 1 if before is None else min(before, found.latest + 1)
    if limit == 0 or top <= 1:
        return Page(found.epoch, found.latest, True, True, [])
    newest = [message_object(frame) for frame in reversed(found.frames)]  # seqs found.last .. found.first
    lowest_in_backlog = min(top, found.first)  # the script never returns a frame at or above top
    older = await _archived(
        name, found.epoch, 1, lowest_in_backlog, limit - len(newest), newest_first=True
    )
    messages = newest + older
    return Page(found.epoch, found.latest, True, _contiguous_down(messages, top), messages)


def _contiguous_down(messages: list[Message], top: int) -> bool:
    """Whether `messages` are exactly top - 1, top - 2, ... with nothing missing."""
    return all(m["seq"] == top - 1 - i for i, m in enumerate(messages))


async def continue_from_archive(stream: str, since_seq: int, found: Range, limit: int) -> SinceResult:
    """Up to `limit` messages after `since_seq`, oldest first: from the archive for the part
    the backlog has dropped, then from the backlog, once the backlog was read from
    `since_seq + 1` (at most `limit`). `found` is of the wanted epoch and `since_seq` below
    its latest, as the caller checked; `recovered` is true when the messages follow
    `since_seq` without a hole."""
    archived = await _archived(stream, found.epoch, since_seq + 1, found.first, limit, newest_first=False)
    messages = (archived + [message_object(frame) for frame in found.frames])[:limit]
    expected = range(since_seq + 1, since_seq + 1 + len(messages))
    contiguous = all(m["seq"] == s for m, s in zip(messages, expected, strict=True))
    return SinceResult(found.epoch, found.latest, contiguous and bool(messages), messages)


async def find_message(stream: str, seq: int) -> Message | None:
    """Message `seq` of the stream's current epoch, from the backlog or else the archive;
    None when there is none (yet, or any more)."""
    got = await runtime.current().backlog.read(stream, first=seq, last=seq)
    if seq > got.latest:
        return None
    if got.frames and got.first == seq:
        return message_object(got.frames[0])
    found = await _archived(stream, got.epoch, seq, seq + 1, 1, newest_first=False)
    return found[0] if found else None
