"""`manage.py mint_token`: print a token (docs/protocol.md "Tokens"), the way a site's backend mints one."""

from __future__ import annotations

import time
from typing import Any

import jwt
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser


def patterns(values: list[str] | None) -> list[str]:
    """`--subs a --subs b` and `--subs a,b` both give ["a", "b"]."""
    return [p.strip() for value in values or [] for p in value.split(",") if p.strip()]


def mint(*, sub: str | None, name: str | None, subs: list[str], pubs: list[str], ttl: int) -> str:
    """An HS256 JWT with the server's secret; `exp` is always set (the server requires it)."""
    claims: dict[str, Any] = {"exp": int(time.time()) + ttl}
    if sub is not None:
        claims["sub"] = sub
    if name is not None:
        claims["name"] = name
    if subs:
        claims["subs"] = subs
    if pubs:
        claims["pubs"] = pubs
    return jwt.encode(claims, settings.RT_TOKEN_SECRET, algorithm="HS256")


class Command(BaseCommand):
    help = "Print a JWT for the WebSocket (?token=) and the HTTP API (Authorization: Bearer)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sub", help="user id: may read user:<sub>, counts as signed in for room: streams")
        parser.add_argument("--name", help="display name shown as the sender")
        parser.add_argument("--subs", action="append", help="stream patterns it may read, e.g. 'live:*' (repeat or comma-separate)")
        parser.add_argument("--pubs", action="append", help="stream patterns it may publish to (repeat or comma-separate)")
        parser.add_argument("--ttl", type=int, default=3600, help="seconds until it expires (default 3600)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["ttl"] <= 0:
            raise CommandError("--ttl must be a positive number of seconds")
        token = mint(
            sub=options["sub"],
            name=options["name"],
            subs=patterns(options["subs"]),
            pubs=patterns(options["pubs"]),
            ttl=options["ttl"],
        )
        self.stdout.write(token)
