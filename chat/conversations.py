"""The conversations a person follows (rooms they opened, groups they belong to, their direct
messages), how far they have read each, and how many messages they have not.

Read positions follow the feed's rule (feed/read_state.py `merge`): only forward, only in
the stream's current epoch, never past its latest seq. A move is sent live to the person's
sockets on `user:<id>` as `{"type": "read", "stream", "epoch", "seq"}`, so every tab and
device lowers its count without polling. Counts are seqs past the read position: edits
and deletions count as messages too (they are, in the log).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from feed.read_state import Position, merge
from realtime import current_backlog, dm_pair, parse_stream, send_ephemeral
from realtime.models import Group

from .models import ReadMark, Room


@dataclass(frozen=True, slots=True)
class Followed:
    stream: str
    epoch: str
    seq: int


def _followed(user_id: int) -> list[Followed]:
    marks = {m.stream: Followed(m.stream, m.epoch, m.seq) for m in ReadMark.objects.filter(user_id=user_id)}
    for name in Group.objects.filter(memberships__user_id=user_id).values_list("name", flat=True):
        marks.setdefault(f"group:{name}", Followed(f"group:{name}", "", 0))
    return list(marks.values())


def _titles(streams: list[str], me: int) -> dict[str, tuple[str, str]]:
    """(title, page url) of each stream, for the list."""
    rooms = {r.name: r.title for r in Room.objects.filter(name__in=[s[5:] for s in streams if s.startswith("room:")])}
    groups = {g.name: g.title for g in Group.objects.filter(name__in=[s[6:] for s in streams if s.startswith("group:")])}
    others: dict[str, str] = {}
    for s in streams:
        pair = dm_pair(s[3:]) if s.startswith("dm:") else None
        if pair:
            others[s] = pair[1] if pair[0] == str(me) else pair[0]
    names = {
        str(u.pk): u.get_username()
        for u in get_user_model()._default_manager.filter(pk__in=[o for o in others.values() if o.isdigit()])
    }
    found = {}
    for s in streams:
        kind, _, name = s.partition(":")
        if kind == "room":
            found[s] = (rooms.get(name) or f"#{name}", f"/rooms/{name}/")
        elif kind == "group":
            found[s] = (groups.get(name) or name, f"/groups/{name}/")
        elif kind == "dm" and s in others:
            found[s] = (names.get(others[s], f"user {others[s]}"), f"/dm/{others[s]}/")
    return found


async def listing(user_id: int) -> list[dict[str, Any]]:
    """The person's conversations, newest first, each with its unread count."""
    followed = await sync_to_async(_followed)(user_id)
    if not followed:
        return []
    titles = await sync_to_async(_titles)([f.stream for f in followed], user_id)
    heads = await current_backlog().heads([f.stream for f in followed])
    rows = []
    for mark, head in zip(followed, heads, strict=True):
        if mark.stream not in titles:
            continue
        unread = head.latest - mark.seq if head.epoch and mark.epoch == head.epoch else head.latest
        title, url = titles[mark.stream]
        rows.append(
            {
                "stream": mark.stream,
                "kind": parse_stream(mark.stream).kind,
                "title": title,
                "url": url,
                "unread": max(0, unread),
                "latest_ts": _ts(head.newest),
            }
        )
    rows.sort(key=_newest_first)
    return rows


def _newest_first(row: dict[str, Any]) -> int:
    return -int(row["latest_ts"] or 0)


def _ts(frame: str | None) -> int | None:
    if not frame:
        return None
    try:
        return int(json.loads(frame)["ts"])
    except (ValueError, KeyError, TypeError):
        return None


def _follow(user_id: int, stream: str) -> None:
    try:
        with transaction.atomic():
            ReadMark.objects.get_or_create(user_id=user_id, stream=stream)
    except IntegrityError:
        pass  # followed meanwhile by another request


follow = sync_to_async(_follow)


def _read_mark(user_id: int, stream: str) -> Position | None:
    mark = ReadMark.objects.filter(user_id=user_id, stream=stream).first()
    return None if mark is None or not mark.epoch else Position(mark.epoch, mark.seq)


read_mark = sync_to_async(_read_mark)


def _advance(user_id: int, stream: str, proposed: Position, epoch: str, latest: int) -> tuple[Position | None, bool]:
    with transaction.atomic():
        mark, _ = ReadMark.objects.select_for_update().get_or_create(user_id=user_id, stream=stream)
        stored = Position(mark.epoch, mark.seq) if mark.epoch else None
        kept = merge(stored, proposed, epoch, latest)
        if kept is None or kept == stored:
            return kept, False
        mark.epoch, mark.seq = kept.epoch, kept.seq
        mark.save(update_fields=["epoch", "seq", "updated"])
        return kept, True


async def advance(user_id: int, stream: str, proposed: Position) -> Position | None:
    """Move the read position forward (the rule of `merge`); a move is told to every tab."""
    epoch, latest = await current_backlog().position(stream)
    try:
        kept, moved = await sync_to_async(_advance)(user_id, stream, proposed, epoch, latest)
    except IntegrityError:  # two first moves raced: the second one reads the first's row
        kept, moved = await sync_to_async(_advance)(user_id, stream, proposed, epoch, latest)
    if moved and kept is not None:
        feed = f"user:{user_id}"
        await send_ephemeral(feed, {"type": "read", "stream": stream, "epoch": kept.epoch, "seq": kept.seq})
    return kept
