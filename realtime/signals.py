"""Tell every server process when a session ends or a user changes (realtime/sessions.py):
their session sockets are closed or re-checked at once instead of at the next sweep."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from .envelope import user_changed
from .publishing import send_control
from .sessions import CONTROL_GROUP, logout_message

log = logging.getLogger("realtime.sessions")


def _tell(message: dict[str, Any]) -> None:
    """Send once the change is committed: a process that re-checks sooner would still
    read the old rights."""

    def send() -> None:
        try:
            send_control(CONTROL_GROUP, message)
        except Exception as exc:  # the periodic re-check still closes what must be closed
            log.warning("could not tell the server processes about a session change: %s", exc)

    transaction.on_commit(send)


def logged_out(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None)
    if key:
        _tell(logout_message(key))


def user_saved(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return  # every sign-in saves last_login: no right changed
    _tell(user_changed(str(instance.pk)))


def user_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    _tell(user_changed(str(instance.pk)))


def connect() -> None:
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    user_logged_out.connect(logged_out, dispatch_uid="realtime.logged_out")
    post_save.connect(user_saved, sender=user_model, dispatch_uid="realtime.user_saved")
    post_delete.connect(user_deleted, sender=user_model, dispatch_uid="realtime.user_deleted")
