"""Notifications on a person's feed `user:<id>` (docs/protocol.md, "Notification feed").

A notification's `data` is `{"title": STRING, "body": STRING, "url": STRING}` (`url`
optional, http or https only). The feed also carries read markers, `{"read": {"epoch",
"seq"}}`, published by the server when a person's read position moves, so that every tab
and device of that person updates its unread count without polling.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from realtime import Published, apublish, parse_stream, publish

from .read_state import Position


def feed_stream(user: Any) -> str:
    """`user:<id>` for a Django user, or for a user id given as an int or a string;
    ValueError for a user without an id (anonymous or not saved), whose stream nobody reads."""
    user_id = getattr(user, "pk", user)
    if user_id is None:
        raise ValueError("this user has no id (anonymous, or not saved yet): no feed to notify")
    return parse_stream(f"user:{user_id}").full


def notification(title: str, body: str, url: str | None = None) -> dict[str, str]:
    """The `data` of one notification; ValueError for a wrong type or a url that is not http(s)."""
    if not isinstance(title, str) or not isinstance(body, str):
        raise ValueError("title and body must be strings")
    data = {"title": title, "body": body}
    if url is not None:
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"url must be an http or https URL, not {url!r}")
        data["url"] = url
    return data


def read_marker(position: Position) -> dict[str, Any]:
    return {"read": {"epoch": position.epoch, "seq": position.seq}}


def notify(user: Any, title: str, body: str, url: str | None = None) -> Published:
    """Publish a notification on the user's feed (from views, commands and jobs)."""
    return publish(feed_stream(user), notification(title, body, url))


async def anotify(user: Any, title: str, body: str, url: str | None = None) -> Published:
    """Async twin of `notify`."""
    return await apublish(feed_stream(user), notification(title, body, url))
