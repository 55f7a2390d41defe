"""Groups and moderation as operations with their rules, for the HTTP API and the chat pages
alike (docs/protocol.md 1.1, "Private conversations"). Synchronous: they are database work;
each change reaches every server process through realtime/signals.py.

Rules: whoever creates a group owns it and is its first member; its owner and staff add and
remove members, and a member may leave (the owner may not: a group always has one). On
`room:` and `group:` streams moderators (staff; a group's owner in it) mute and ban.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from .auth import Principal, Via
from .errors import BadRequest, Conflict, Forbidden, NotFound
from .models import Group, GroupMember, Sanction
from .names import parse_stream
from .rights import is_moderator
from .standing import Standing, read_standings


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a user id (a session's user, or a token's `sub`) and whether staff."""

    user_id: str | None
    is_staff: bool = False


def _user(user_id: str) -> Any:
    """The Django user of `user_id`; NotFound when there is none."""
    model = get_user_model()
    user = model._default_manager.filter(pk=user_id).first() if str(user_id).isdigit() else None
    if user is None:
        raise NotFound(f"no such user: {user_id!r}")
    return user


def _acting_user(actor: Actor) -> Any:
    """The Django user who acts; Forbidden for a token whose `sub` is no user here."""
    try:
        return _user(actor.user_id or "")
    except NotFound:
        raise Forbidden("only people with an account here can own a group") from None


def user_by_name(username: str) -> Any:
    model = get_user_model()
    user = model._default_manager.filter(**{model.USERNAME_FIELD: username}).first()
    if user is None:
        raise NotFound(f"no such user: {username!r}")
    return user


def _visible_group(actor: Actor, name: str) -> Group:
    """The group, for one of its members (or staff); Forbidden otherwise, whether it exists
    or not, so names do not leak."""
    group: Group | None = Group.objects.filter(name=name).first()
    if group is None or not (actor.is_staff or _is_member(group, actor.user_id)):
        raise Forbidden(f"you may not see group:{name}")
    return group


def _is_member(group: Group, user_id: str | None) -> bool:
    return user_id is not None and str(user_id).isdigit() and group.memberships.filter(user_id=user_id).exists()


def create(actor: Actor, name: str, title: str) -> tuple[Group, bool]:
    """(group, created); Conflict when another owns the name."""
    parse_stream(f"group:{name}")  # BadRequest for a name no stream can have
    if len(title) > 120:
        raise BadRequest("title: at most 120 characters")
    owner = _acting_user(actor)
    with transaction.atomic():
        try:
            group, created = Group.objects.get_or_create(name=name, defaults={"title": title, "owner": owner})
        except IntegrityError:
            group, created = Group.objects.get(name=name), False
        if created:
            GroupMember.objects.create(group=group, user=owner, added_by=owner)
        elif group.owner_id != owner.pk:
            raise Conflict(f"group:{name} belongs to someone else")
        elif title and group.title != title:
            group.title = title
            group.save(update_fields=["title"])
    return group, created


def members(actor: Actor, name: str) -> dict[str, Any]:
    group = _visible_group(actor, name)
    rows = group.memberships.select_related("user").order_by("added", "id")
    listed = [{"id": str(m.user_id), "name": m.user.get_username()} for m in rows]
    return {"group": name, "owner": str(group.owner_id), "title": group.title, "members": listed}


def add(actor: Actor, name: str, user_id: str) -> None:
    group = _visible_group(actor, name)
    if not (actor.is_staff or str(group.owner_id) == actor.user_id):
        raise Forbidden(f"only the owner of group:{name} or staff may add members")
    user = _user(user_id)
    GroupMember.objects.get_or_create(group=group, user=user, defaults={"added_by_id": _pk(actor)})


def remove(actor: Actor, name: str, user_id: str) -> None:
    group = _visible_group(actor, name)
    if not (actor.is_staff or str(group.owner_id) == actor.user_id or user_id == actor.user_id):
        raise Forbidden(f"only the owner of group:{name}, staff or the member may remove a member")
    if str(group.owner_id) == str(user_id):
        raise BadRequest("the owner cannot leave their own group")
    for membership in group.memberships.filter(user_id=user_id) if str(user_id).isdigit() else []:
        membership.delete()  # one by one: post_delete tells every process


def _pk(actor: Actor) -> int | None:
    return int(actor.user_id) if actor.user_id and actor.user_id.isdigit() else None


def standing_now(stream_name: str, user_id: str | None) -> Standing | None:
    stream = parse_stream(stream_name)
    if user_id is None or stream.kind not in ("room", "group"):
        return None
    return read_standings(stream, [user_id])[user_id]


def sanction(actor: Actor, stream_name: str, user_id: str, kind: str, on: bool) -> None:
    """Give (`on`) or lift a mute or ban; moderators only."""
    stream = parse_stream(stream_name)
    if stream.kind not in ("room", "group"):
        raise BadRequest("mutes and bans apply to room: and group: streams")
    who = Principal(Via.SESSION, user_id=actor.user_id, is_staff=actor.is_staff)
    standing = standing_now(stream.full, actor.user_id)
    if not is_moderator(who, standing) or (stream.kind == "group" and standing is not None and not standing.exists):
        raise Forbidden(f"only moderators of {stream.full} may mute or ban")
    user = _user(user_id)
    if on:
        Sanction.objects.get_or_create(stream=stream.full, user=user, kind=kind, defaults={"by_id": _pk(actor)})
    else:
        for row in Sanction.objects.filter(stream=stream.full, user=user, kind=kind):
            row.delete()

