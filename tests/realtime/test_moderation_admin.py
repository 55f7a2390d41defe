"""Mutes, bans and group memberships in the Django admin: who did it, to whom, and when."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from realtime import groups
from realtime.errors import Forbidden
from realtime.models import Sanction

pytestmark = pytest.mark.django_db


def test_the_admin_lists_who_muted_or_banned_whom_and_when() -> None:
    users = get_user_model().objects
    staff = users.create_superuser("modder", password="pw-admin-123")
    owner, member = users.create_user("owner1"), users.create_user("member1")
    groups.create(groups.Actor(str(owner.pk)), "crew", "Crew")
    groups.add(groups.Actor(str(owner.pk)), "crew", str(member.pk))
    groups.sanction(groups.Actor(str(owner.pk)), "group:crew", str(member.pk), Sanction.MUTE, True)
    groups.sanction(groups.Actor(str(staff.pk), is_staff=True), "room:lobby", str(member.pk), Sanction.BAN, True)
    with pytest.raises(Forbidden):  # a member is no moderator
        groups.sanction(groups.Actor(str(member.pk)), "group:crew", str(owner.pk), Sanction.MUTE, True)
    browser = Client()
    browser.force_login(staff)
    page = browser.get("/admin/realtime/sanction/").content.decode()
    for text in ("group:crew", "room:lobby", "member1", "owner1", "modder", "mute", "ban"):
        assert text in page, text
    row = Sanction.objects.get(stream="group:crew")
    assert row.by == owner and row.created is not None
    crew = browser.get("/admin/realtime/group/").content.decode()
    assert "crew" in crew and "owner1" in crew
