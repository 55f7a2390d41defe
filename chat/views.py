"""The chat pages: sign up (throttled per address, chat/throttle.py), the room list (with
forms to create a room or a group, and the conversations one follows), a room, a group,
a direct message, the people to write to. Sign-in is Django's own view, throttled by django-axes.

A conversation page is a shell: messages come over the WebSocket (`static/chat/room.js`),
so any valid room name works, with or without a `Room` row. The server checks rights on
every frame and request; a page only mirrors them (who sees which buttons).
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from realtime import RealtimeError, dm_stream
from realtime import groups as group_ops

from . import conversations
from .forms import GroupForm, RoomForm, SignUpForm
from .models import ReadMark, Room
from .throttle import signup_refusal

HISTORY = 50  # messages a page shows when it opens


def _me(request: HttpRequest) -> dict[str, str] | None:
    user = request.user
    return {"id": str(user.pk), "name": user.get_username()} if user.is_authenticated else None


def _actor(request: HttpRequest) -> group_ops.Actor:
    return group_ops.Actor(str(request.user.pk), bool(request.user.is_staff))


def room_list(request: HttpRequest) -> HttpResponse:
    form = RoomForm()
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect(f"/accounts/login/?next={request.path}")
        form = RoomForm(request.POST)
        if form.is_valid():
            room = form.save()
            return redirect("room", name=room.name)
    return _list_page(request, form=form, group_form=GroupForm(auto_id="id_group_%s"))


def _list_page(request: HttpRequest, *, form: RoomForm, group_form: GroupForm, status: int = 200) -> HttpResponse:
    followed: list[dict[str, Any]] = []
    if request.user.is_authenticated:
        try:
            followed = async_to_sync(conversations.listing)(int(request.user.pk))
        except RealtimeError:
            followed = []  # Redis out of reach: the list comes without counts next time
    context = {
        "rooms": Room.objects.all(),
        "form": form,
        "group_form": group_form,
        "conversations": followed,
        "user_config": {"user": _me(request), "streams": [c["stream"] for c in followed]},
    }
    return render(request, "chat/room_list.html", context, status=status)


@login_required
@require_POST
def create_group(request: HttpRequest) -> HttpResponse:
    group_form = GroupForm(request.POST, auto_id="id_group_%s")
    if group_form.is_valid():
        try:
            group, _ = group_ops.create(_actor(request), group_form.cleaned_data["name"], group_form.cleaned_data["title"])
            return redirect("group", name=group.name)
        except RealtimeError as exc:
            group_form.add_error("name", exc.message)
    return _list_page(request, form=RoomForm(), group_form=group_form, status=400)


def _page(request: HttpRequest, stream: str, kind: str, title: str, **extra: Any) -> HttpResponse:
    me = _me(request)
    read = None
    if me is not None:
        # Opening a conversation follows it: it is in the person's list from now on.
        mark, _ = ReadMark.objects.get_or_create(user_id=request.user.pk, stream=stream)
        if mark.epoch:
            read = {"epoch": mark.epoch, "seq": mark.seq}
    config = {
        "stream": stream,
        "kind": kind,
        "history": HISTORY,
        "user": me,
        "moderator": bool(extra.pop("moderator", False) or (me is not None and request.user.is_staff)),
        "title": title,
        "read": read,
    }
    context = {"name": stream.partition(":")[2], "kind": kind, "title": title, "config": config, "room": None,
               "group": None, "is_owner": False, "is_member": False, **extra}
    return render(request, "chat/room.html", context)


def room(request: HttpRequest, name: str) -> HttpResponse:
    known = Room.objects.filter(name=name).first()
    return _page(request, f"room:{name}", "room", (known.title if known and known.title else f"#{name}"), room=known)


@login_required
def group(request: HttpRequest, name: str) -> HttpResponse:
    try:
        listed = group_ops.members(_actor(request), name)
    except RealtimeError:
        return render(request, "chat/forbidden.html", {"what": f"group:{name}"}, status=403)
    names = {m["id"]: m["name"] for m in listed["members"]}
    owner = {"id": listed["owner"], "name": names.get(listed["owner"], "")}
    me = str(request.user.pk)
    info = {"name": name, "title": listed["title"], "owner": owner, "members": listed["members"]}
    is_owner = owner["id"] == me
    return _page(
        request, f"group:{name}", "group", listed["title"] or name, group=info, is_owner=is_owner,
        is_member=me in names, moderator=is_owner,
    )


@login_required
def direct(request: HttpRequest, user_id: str) -> HttpResponse:
    other = get_user_model()._default_manager.filter(pk=user_id).first() if user_id.isdigit() else None
    if other is None or other.pk == request.user.pk:
        raise Http404("no such person")
    stream = dm_stream(str(request.user.pk), str(other.pk))
    return _page(request, stream, "dm", other.get_username(), other={"id": str(other.pk), "name": other.get_username()})


@login_required
def people(request: HttpRequest) -> HttpResponse:
    users = get_user_model()._default_manager.filter(is_active=True).exclude(pk=request.user.pk).order_by("username")
    listed = [{"id": str(u.pk), "name": u.get_username()} for u in users[:500]]
    return render(request, "chat/people.html", {"people": listed})


@login_required
@require_POST
def add_member(request: HttpRequest, name: str) -> HttpResponse:
    try:
        user = group_ops.user_by_name(request.POST.get("username", "").strip())
        group_ops.add(_actor(request), name, str(user.pk))
    except RealtimeError as exc:
        return _member_error(request, name, exc)
    return redirect("group", name=name)


@login_required
@require_POST
def remove_member(request: HttpRequest, name: str, user_id: str) -> HttpResponse:
    try:
        group_ops.remove(_actor(request), name, user_id)
    except RealtimeError as exc:
        return _member_error(request, name, exc)
    if user_id == str(request.user.pk):
        return redirect("room_list")  # left the group
    return redirect("group", name=name)


def _member_error(request: HttpRequest, name: str, exc: RealtimeError) -> HttpResponse:
    return render(request, "chat/forbidden.html", {"what": f"group:{name}", "why": exc.message}, status=exc.status)


def signup(request: HttpRequest) -> HttpResponse:
    next_url = request.POST.get("next") or request.GET.get("next") or "/rooms/"
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
        next_url = "/rooms/"
    if request.method == "POST" and (refusal := signup_refusal(request)) is not None:
        return refusal
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")  # not axes: it signs no one in
        return redirect(next_url)
    return render(request, "registration/signup.html", {"form": form, "next": next_url})

