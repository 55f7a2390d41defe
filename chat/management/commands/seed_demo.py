"""Demo content for a first `make run`: a `lobby` room, a `live:demo` stream, a demo user."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the demo room, stream and user once (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        from chat.models import Room

        Room.objects.get_or_create(name="lobby", defaults={"title": "Lobby"})
        User = get_user_model()
        password_file = settings.DATA_DIR / "demo-password.txt"
        if not User.objects.filter(username="demo").exists():
            password = secrets.token_urlsafe(9)
            User.objects.create_user("demo", password=password, is_staff=True)
            password_file.touch(mode=0o600)
            password_file.chmod(0o600)  # a password: its owner's only, even in a file made before
            password_file.write_text(password)
        if password_file.exists():
            password_file.chmod(0o600)
            self.stdout.write(f"[run] demo user: demo / {password_file.read_text().strip()}  (staff: may publish scores)")
