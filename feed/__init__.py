"""The notification feed: each person's stream `user:<id>`, its read state, the bell.

Server code sends with `feed.notify(user, title, body, url=None)` (`await feed.anotify(...)`
in async code).
"""

from __future__ import annotations

from typing import Any

__all__ = ["anotify", "notify"]


def __getattr__(name: str) -> Any:
    # Lazy, so that importing `feed` does not need configured settings.
    if name in __all__:
        from . import notifications

        return getattr(notifications, name)
    raise AttributeError(name)
