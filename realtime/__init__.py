"""The messaging core: streams with a delivery promise over WebSocket and HTTP.

Other code uses only what `__all__` names; everything else is internal.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Published", "Sender", "apublish", "publish"]


def __getattr__(name: str) -> Any:
    # Lazy, so that importing `realtime` does not need configured settings.
    if name in __all__:
        from . import publishing

        return getattr(publishing, name)
    raise AttributeError(name)
