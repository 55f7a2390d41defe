"""Tell every server process when a session ends or a user changes (realtime/sessions.py),
or when someone's rights on a group or room change (realtime/standing.py): their sockets
are closed or re-checked at once instead of at the next sweep."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from .envelope import rights_changed, user_changed
from .publishing import send_control
from .sessions import CONTROL_GROUP, logout_message
from .standing import STANDINGS

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


def membership_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    _rights(f"group:{instance.group.name}", str(instance.user_id))


def sanction_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    _rights(instance.stream, str(instance.user_id))


def group_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    _rights(instance.stream, None)


def _rights(stream: str, user_id: str | None) -> None:
    def forget_here() -> None:  # before the push comes back: a request right after reads anew
        STANDINGS.forget(stream, user_id)

    transaction.on_commit(forget_here)
    _tell(rights_changed(stream, user_id))


def connect() -> None:
    from django.contrib.auth import get_user_model

    from .models import Group, GroupMember, Sanction

    user_model = get_user_model()
    user_logged_out.connect(logged_out, dispatch_uid="realtime.logged_out")
    post_save.connect(user_saved, sender=user_model, dispatch_uid="realtime.user_saved")
    post_delete.connect(user_deleted, sender=user_model, dispatch_uid="realtime.user_deleted")
    for signal in (post_save, post_delete):
        signal.connect(membership_changed, sender=GroupMember, dispatch_uid=f"realtime.member.{signal is post_save}")
        signal.connect(sanction_changed, sender=Sanction, dispatch_uid=f"realtime.sanction.{signal is post_save}")
        signal.connect(group_changed, sender=Group, dispatch_uid=f"realtime.group.{signal is post_save}")
