"""`/api/groups/…` and `/api/streams/S/mutes|bans/…` over HTTP (docs/protocol.md 1.1), on
the operations of realtime/groups.py. Credentials as for every endpoint: a session (with
the CSRF token for writes) or a token with `sub`, which counts as that user."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from asgiref.sync import sync_to_async
from django.http import HttpRequest
from ninja import Field, Path, Router, Schema

from . import groups
from .auth import Principal
from .errors import Unauthorized
from .http import ERRORS, ErrorOut, decode_body, json_body, principal_of, require_csrf
from .names import NAME_PATTERN

router = Router(tags=["groups"])
moderation = Router(tags=["moderation"])

GroupPath = Annotated[str, Path(..., pattern=f"^{NAME_PATTERN}$", description="the NAME of group:NAME")]
ModeratedPath = Annotated[
    str, Path(..., pattern=f"^(?:room|group):{NAME_PATTERN}$", description="a room: or group: stream")
]
UserPath = Annotated[str, Path(..., pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="a user id")]


class GroupIn(Schema):
    title: str = Field("", max_length=120)


class _GroupBody(msgspec.Struct, frozen=True):
    title: Annotated[str, msgspec.Meta(max_length=120)] = ""


class GroupOut(Schema):
    group: str
    owner: str
    title: str


class MemberOut(Schema):
    id: str
    name: str


class MembersOut(Schema):
    group: str
    owner: str
    title: str
    members: list[MemberOut]


class DoneOut(Schema):
    ok: bool = True


class SanctionOut(Schema):
    stream: str
    user: str
    kind: str
    on: bool


_group_body = msgspec.json.Decoder(_GroupBody)


async def _actor(request: HttpRequest, *, write: bool) -> groups.Actor:
    who: Principal = await principal_of(request)
    if write:
        require_csrf(request, who)
    if who.user_id is None:
        raise Unauthorized("sign in, or send a token with sub")
    return groups.Actor(who.user_id, who.is_staff)


@router.put(
    "/{name}",
    response={201: GroupOut, 200: GroupOut, 409: ErrorOut, **ERRORS},
    openapi_extra=json_body(GroupIn.model_json_schema()),
    summary="Create a group (the caller owns it)",
)
async def create_group(request: HttpRequest, name: GroupPath) -> tuple[int, dict[str, Any]]:
    actor = await _actor(request, write=True)
    body = decode_body(request, _group_body)
    group, created = await sync_to_async(groups.create)(actor, name, body.title)
    return (201 if created else 200), {"group": group.name, "owner": str(group.owner_id), "title": group.title}


@router.get("/{name}/members", response={200: MembersOut, **ERRORS}, summary="A group's members")
async def list_members(request: HttpRequest, name: GroupPath) -> dict[str, Any]:
    return await sync_to_async(groups.members)(await _actor(request, write=False), name)


@router.put("/{name}/members/{user_id}", response={200: DoneOut, **ERRORS}, summary="Add a member (owner, staff)")
async def add_member(request: HttpRequest, name: GroupPath, user_id: UserPath) -> dict[str, Any]:
    await sync_to_async(groups.add)(await _actor(request, write=True), name, user_id)
    return {"ok": True}


@router.delete(
    "/{name}/members/{user_id}", response={200: DoneOut, **ERRORS}, summary="Remove a member (owner, staff, or itself)"
)
async def remove_member(request: HttpRequest, name: GroupPath, user_id: UserPath) -> dict[str, Any]:
    await sync_to_async(groups.remove)(await _actor(request, write=True), name, user_id)
    return {"ok": True}


def _sanction_routes(kind: str, plural: str) -> None:
    async def give(request: HttpRequest, stream: ModeratedPath, user_id: UserPath) -> dict[str, Any]:
        await sync_to_async(groups.sanction)(await _actor(request, write=True), stream, user_id, kind, True)
        return {"stream": stream, "user": user_id, "kind": kind, "on": True}

    async def lift(request: HttpRequest, stream: ModeratedPath, user_id: UserPath) -> dict[str, Any]:
        await sync_to_async(groups.sanction)(await _actor(request, write=True), stream, user_id, kind, False)
        return {"stream": stream, "user": user_id, "kind": kind, "on": False}

    path = "/{stream}/%s/{user_id}" % plural
    moderation.put(path, response={200: SanctionOut, **ERRORS}, summary=f"{kind.title()} a user (moderators)", operation_id=f"give_{kind}")(give)
    moderation.delete(path, response={200: SanctionOut, **ERRORS}, summary=f"Lift a {kind}", operation_id=f"lift_{kind}")(lift)


_sanction_routes("mute", "mutes")
_sanction_routes("ban", "bans")
