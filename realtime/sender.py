"""Who publishes: a leaf module, so that the rights (auth) and the publish pipeline both
use it without one importing the other."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sender:
    """Who publishes: `public` goes into the frame, `key` scopes idempotency ids."""

    key: str
    id: str | None = None
    name: str | None = None

    @property
    def public(self) -> dict[str, str] | None:
        if self.id is None:
            return None
        return {"id": self.id, "name": self.name or ""}


SERVER = Sender(key="server")
