"""A user's standing on a group or room: member, owner, muted, banned, read from the database.

Rights are checked at subscribe, publish and every HTTP read, never per delivered message:
the hub passes frames on to subscriptions that were allowed. So that those checks do not
query the database each time, each process keeps what it read for `RT_RIGHTS_TTL` seconds.
Every change (realtime/conversation_signals.py) is pushed to every process's hub, which
forgets the entry and re-checks that user's open subscriptions at once; the TTL bounds how
long a process whose push was lost (pub/sub is at most once) can lag, and the hub re-checks
its private subscriptions that often too (`recheck`), one query per stream.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from channels.db import database_sync_to_async
from django.conf import settings

from .names import StreamName


@dataclass(frozen=True, slots=True)
class Standing:
    exists: bool = True  # False: a `group:` nobody created (the same answer as excluded)
    owner_id: str | None = None
    member: bool = False
    owner: bool = False
    muted: bool = False
    banned: bool = False


NOBODY = Standing()


def _user_pk(user_id: str | None) -> int | None:
    """The database key of a user id; None for ids no Django user can have (token subs)."""
    if user_id is None or not user_id.isdigit() or len(user_id) > 18:
        return None
    return int(user_id)


def read_standings(stream: StreamName, user_ids: list[str]) -> dict[str, Standing]:
    """The standing of each of `user_ids` on `stream`, in at most three queries."""
    from .models import Group, GroupMember, Sanction

    pks = {uid: pk for uid in user_ids if (pk := _user_pk(uid)) is not None}
    owner_id: str | None = None
    members: set[int] = set()
    if stream.kind == "group":
        group = Group.objects.filter(name=stream.name).only("id", "owner_id").first()
        if group is None:
            return {uid: Standing(exists=False) for uid in user_ids}
        owner_id = str(group.owner_id)
        members = set(
            GroupMember.objects.filter(group=group, user_id__in=pks.values()).values_list("user_id", flat=True)
        )
    sanctions: dict[int, set[str]] = {}
    for user, kind in Sanction.objects.filter(stream=stream.full, user_id__in=pks.values()).values_list("user_id", "kind"):
        sanctions.setdefault(user, set()).add(kind)
    result = {}
    for uid in user_ids:
        pk = pks.get(uid)
        kinds = sanctions.get(pk, set()) if pk is not None else set()
        result[uid] = Standing(
            exists=True,
            owner_id=owner_id,
            member=pk in members,
            owner=owner_id is not None and uid == owner_id,
            muted=Sanction.MUTE in kinds,
            banned=Sanction.BAN in kinds,
        )
    return result


_load_async = database_sync_to_async(read_standings)


async def load_many(stream: StreamName, user_ids: list[str]) -> dict[str, Standing]:
    found: dict[str, Standing] = await _load_async(stream, user_ids)
    return found


class Standings:
    """This process's cache: (stream, user id) -> (standing, when read)."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, str], tuple[Standing, float]] = {}

    async def of(self, stream: StreamName, user_id: str | None) -> Standing:
        if user_id is None:
            return NOBODY if stream.kind != "group" else await self._group_only(stream)
        key = (stream.full, user_id)
        held = self._held.get(key)
        if held is not None and time.monotonic() - held[1] < settings.RT_RIGHTS_TTL:
            return held[0]
        return (await self.refresh(stream, [user_id]))[user_id]

    async def _group_only(self, stream: StreamName) -> Standing:
        """For a caller without a user id: whether the group exists is all that matters."""
        return (await load_many(stream, ["-"]))["-"]

    async def refresh(self, stream: StreamName, user_ids: list[str]) -> dict[str, Standing]:
        found = await load_many(stream, user_ids)
        now = time.monotonic()
        if len(self._held) > 100_000:
            self._held.clear()  # a bound, not a policy: entries are cheap to read again
        for uid, standing in found.items():
            self._held[(stream.full, uid)] = (standing, now)
        return found

    def forget(self, stream: str, user_id: str | None = None) -> None:
        if user_id is not None:
            self._held.pop((stream, user_id), None)
            return
        for key in [k for k in self._held if k[0] == stream]:
            del self._held[key]


#: One per process: every consumer, request and hub of it shares what was read.
STANDINGS = Standings()
