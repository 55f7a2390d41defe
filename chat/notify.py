"""What a chat message sets off once it is stored (realtime `message_published`):

- it puts the stream in its sender's list of conversations, and a `dm:` in both people's;
- a direct message rings the recipient's bell when they do not have the conversation open;
- each `@username` of a message notifies that person's feed, if they may read the stream.

Runs after the ack, in the background: a slow database never delays a message.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model

from feed.notifications import anotify
from realtime import Principal, StreamName, dm_pair, from_user, may_read, present_user_ids
from realtime.models import Group

from . import conversations

log = logging.getLogger("chat.notify")

#: `@` then a Django username (letters, digits and @/./+/-/_), not inside a word or address.
MENTION = re.compile(r"(?<![\w@.+-])@([\w.@+-]{1,150})")
#: At most this many people notified per message: a message naming the whole company is a broadcast.
MAX_MENTIONS = 20
PREVIEW = 200


def mentioned_names(text: str) -> list[str]:
    """The usernames `text` mentions, once each, in order; a trailing dot or comma is punctuation."""
    names: list[str] = []
    for raw in MENTION.findall(text):
        name = raw.rstrip(".")
        if name and name not in names:
            names.append(name)
    return names[:MAX_MENTIONS]


def _label_and_path(stream: StreamName, author_id: str) -> tuple[str, str]:
    """How a notification names the stream, and the page its reader opens it on (for a
    `dm:`, the reader's conversation with the author)."""
    if stream.kind == "group":
        title = Group.objects.filter(name=stream.name).values_list("title", flat=True).first()
        return (title or stream.name), f"/groups/{stream.name}/"
    if stream.kind == "dm":
        return "a direct message", f"/dm/{author_id}/"
    return f"#{stream.name}", f"/rooms/{stream.name}/"


def _users_named(names: list[str]) -> list[Any]:
    model = get_user_model()
    return list(model._default_manager.filter(**{f"{model.USERNAME_FIELD}__in": names}, is_active=True))


async def on_message_published(
    sender: Any, stream: StreamName, data: Any, who: Principal, published: Any, site: str, **kwargs: Any
) -> None:
    me = who.user_id
    if me is not None and me.isdigit():
        await conversations.follow(int(me), stream.full)
    text = data.get("text") if isinstance(data, dict) and set(data) == {"text"} else None
    label, path = await sync_to_async(_label_and_path)(stream, me or "")
    url = f"{site}{path}#m{published.seq}"
    author = who.name or "someone"
    preview = text[:PREVIEW] if isinstance(text, str) else ""
    if stream.kind == "dm":
        pair = dm_pair(stream.name) or ("", "")
        other = pair[1] if pair[0] == me else pair[0]
        if other.isdigit():
            await conversations.follow(int(other), stream.full)
            if text is not None and other not in await present_user_ids(stream.full):
                await anotify(int(other), f"New message from {author}", preview, f"{site}{path}")
    if not isinstance(text, str) or "@" not in text:
        return
    for user in await sync_to_async(_users_named)(mentioned_names(text)):
        if str(user.pk) == me:
            continue
        if not await may_read(from_user(user), stream):
            continue  # never tell someone about a conversation they cannot open
        await anotify(user, f"{author} mentioned you in {label}", preview, url)


def connect() -> None:
    from realtime import message_published

    message_published.connect(on_message_published, dispatch_uid="chat.notify")
