"""The chat pages: sign up (throttled per address, chat/throttle.py), the room list (with
a form to create a room), a room. Sign-in is Django's own view, throttled by django-axes.

The room page is a shell: messages come over the WebSocket (`static/chat/room.js`), so
any valid room name works, with or without a `Room` row.
"""

from __future__ import annotations

from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from .forms import RoomForm, SignUpForm
from .models import Room
from .throttle import signup_refusal

HISTORY = 50  # messages a room page shows when it opens


def room_list(request: HttpRequest) -> HttpResponse:
    form = RoomForm()
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect(f"/accounts/login/?next={request.path}")
        form = RoomForm(request.POST)
        if form.is_valid():
            room = form.save()
            return redirect("room", name=room.name)
    return render(request, "chat/room_list.html", {"rooms": Room.objects.all(), "form": form})


def room(request: HttpRequest, name: str) -> HttpResponse:
    known = Room.objects.filter(name=name).first()
    user = request.user
    config = {
        "stream": f"room:{name}",
        "history": HISTORY,
        "user": {"id": str(user.pk), "name": user.get_username()} if user.is_authenticated else None,
    }
    return render(request, "chat/room.html", {"name": name, "room": known, "config": config})


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
