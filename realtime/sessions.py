"""Sockets opened with a session follow that session, on every server process.

A WebSocket authenticates once, at connect; without this, a socket kept its rights after
the person logged out, was deleted or lost staff rights. So:

- logging out (Django's `user_logged_out`) and saving or deleting a user send a control
  message to every process's hub over the channel layer (`CONTROL_GROUP`); a process
  closes the sockets of that session at once, and re-checks the sockets of that user;
- every `RT_SESSION_RECHECK` seconds each process re-checks all of its session sockets
  in one pass (one session query and one user query per 500 sessions, for the database
  session engines), which catches changes made behind Django's back.

A socket whose principal changed (signed out, another user, staff rights gone or given)
is closed with `CloseCode.SIGNED_OUT`: the client reconnects and gets its new rights.
Session keys never leave the process: control messages carry a hash of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Iterable
from importlib import import_module
from typing import Any, Protocol

from channels.db import database_sync_to_async
from django.conf import settings

from . import envelope
from .auth import ANONYMOUS, Principal, from_user

log = logging.getLogger("realtime.sessions")

#: The channel-layer group every hub joins for control messages.
CONTROL_GROUP = "rt.control"
_CHUNK = 500


def session_tag(session_key: str) -> str:
    """What control messages name a session by: a hash, never the key itself."""
    return hashlib.sha256(session_key.encode()).hexdigest()[:32]


def logout_message(session_key: str) -> dict[str, Any]:
    return envelope.session_ended(session_tag(session_key))


class SessionSocket(Protocol):
    """What the watch needs of a consumer."""

    who: Principal
    session_key: str

    def credentials_changed(self) -> None: ...


def same_rights(a: Principal, b: Principal) -> bool:
    return a.user_id == b.user_id and a.is_staff == b.is_staff


class SessionWatch:
    """One per hub: this process's session sockets, by session tag."""

    def __init__(self, recheck_interval: float) -> None:
        self.recheck_interval = recheck_interval
        self.sockets: dict[str, set[SessionSocket]] = {}

    def add(self, socket: SessionSocket) -> None:
        self.sockets.setdefault(session_tag(socket.session_key), set()).add(socket)

    def discard(self, socket: SessionSocket) -> None:
        tag = session_tag(socket.session_key)
        held = self.sockets.get(tag)
        if held is not None:
            held.discard(socket)
            if not held:
                del self.sockets[tag]

    async def on_control(self, event: envelope.SessionEnded | envelope.UserChanged) -> None:
        if isinstance(event, envelope.SessionEnded):
            for socket in list(self.sockets.get(event.tag, ())):
                socket.credentials_changed()
        else:
            user = event.user_id
            await self.recheck(s for held in self.sockets.values() for s in held if s.who.user_id == user)

    async def recheck(self, sockets: Iterable[SessionSocket]) -> None:
        """Close the sockets whose session now gives other rights than at connect."""
        chosen = list(sockets)
        if not chosen:
            return
        now = await principals_now({s.session_key for s in chosen})
        for socket in chosen:
            if not same_rights(socket.who, now.get(socket.session_key, ANONYMOUS)):
                socket.credentials_changed()

    async def run(self) -> None:
        """Re-check every session socket now and then, until cancelled."""
        while True:
            await asyncio.sleep(self.recheck_interval)
            try:
                await self.recheck(s for held in list(self.sockets.values()) for s in held)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("re-checking session sockets failed; trying again in %g s", self.recheck_interval)


@database_sync_to_async
def principals_now(session_keys: set[str]) -> dict[str, Principal]:
    """Each session's principal now (ANONYMOUS for one logged out, expired or whose user is
    gone, inactive or changed password), as `django.contrib.auth.get_user` would judge."""
    keys = sorted(session_keys)
    if settings.SESSION_ENGINE in ("django.contrib.sessions.backends.db", "django.contrib.sessions.backends.cached_db"):
        found: dict[str, Principal] = {}
        for start in range(0, len(keys), _CHUNK):
            found.update(_principals_from_table(keys[start : start + _CHUNK]))
        return found
    return {key: _principal_of_session(key) for key in keys}


def _principal_of_session(session_key: str) -> Principal:
    from django.contrib.auth import get_user

    class _Request:
        session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)

    return from_user(get_user(_Request()))


def _principals_from_table(keys: list[str]) -> dict[str, Principal]:
    """Two queries for many sessions of the database engines, with get_user's checks."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.models import Session
    from django.utils import timezone
    from django.utils.crypto import constant_time_compare

    claims: dict[str, tuple[str, str]] = {}
    for row in Session.objects.filter(session_key__in=keys, expire_date__gt=timezone.now()):
        data = row.get_decoded()
        if SESSION_KEY in data and data.get(BACKEND_SESSION_KEY) in settings.AUTHENTICATION_BACKENDS:
            claims[row.session_key] = (str(data[SESSION_KEY]), str(data.get(HASH_SESSION_KEY, "")))
    users = get_user_model()._default_manager.in_bulk({uid for uid, _ in claims.values()})
    by_id = {str(pk): user for pk, user in users.items()}
    result: dict[str, Principal] = {}
    for key, (uid, hashed) in claims.items():
        user = by_id.get(uid)
        if user is not None and user.is_active and constant_time_compare(hashed, user.get_session_auth_hash()):
            result[key] = from_user(user)
    return result

