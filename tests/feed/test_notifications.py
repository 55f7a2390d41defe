"""feed.notify: notifications land on the person's stream with the documented fields."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import AnonymousUser

import feed
from feed.notifications import feed_stream, notification
from realtime import runtime
from realtime.errors import BadRequest


def test_notification_fields() -> None:
    assert notification("Hi", "there") == {"title": "Hi", "body": "there"}
    assert notification("Hi", "", "https://example.com/x") == {"title": "Hi", "body": "", "url": "https://example.com/x"}


@pytest.mark.parametrize(
    "args",
    [(1, "body"), ("title", None), ("t", "b", "javascript:alert(1)"), ("t", "b", "/relative"), ("t", "b", 5)],
    ids=["title not a string", "body not a string", "javascript url", "relative url", "url not a string"],
)
def test_wrong_notifications_are_refused(args: tuple) -> None:
    with pytest.raises(ValueError):
        notification(*args)


async def test_notify_publishes_on_the_users_stream() -> None:
    class User:
        pk = 42

    # The sync helper from a thread (as a view or a job calls it), the async one here.
    first = await sync_to_async(feed.notify, thread_sensitive=False)(User(), "Welcome", "Glad you are here")
    second = await feed.anotify("42", "Reply", "Bob answered", url="https://example.com/r/1")
    assert (first.stream, first.seq, second.seq) == ("user:42", 1, 2)
    got = await runtime.current().backlog.read("user:42")
    texts = "".join(got.frames)
    assert '"title":"Welcome"' in texts and '"url":"https://example.com/r/1"' in texts
    assert len(got.frames) == 2


@pytest.mark.parametrize("user", [AnonymousUser(), None, "not a/valid id"], ids=["anonymous", "no id", "bad id"])
def test_a_user_without_a_usable_id_has_no_feed(user: object) -> None:
    """Publishing to `user:None` would succeed and reach nobody: refuse it instead."""
    with pytest.raises((ValueError, BadRequest)):
        feed_stream(user)
