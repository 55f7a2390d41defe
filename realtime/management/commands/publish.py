"""`manage.py publish STREAM JSON`: publish as the server (no rights check: server code may)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from realtime.errors import RealtimeError
from realtime.publishing import publish


class Command(BaseCommand):
    help = "Publish one message to a stream and print its seq and epoch."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("stream", help="e.g. live:scores")
        parser.add_argument("data", help="the message as JSON, e.g. '{\"score\": [1, 0]}'")
        parser.add_argument("--id", help="idempotency id: a repeat within 10 minutes is stored once")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            data = json.loads(options["data"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"data is not valid JSON: {exc}") from None
        try:
            done = publish(options["stream"], data, id=options["id"])
        except RealtimeError as exc:
            raise CommandError(str(exc)) from None
        note = " (duplicate id: already stored)" if done.duplicate else ""
        self.stdout.write(f"seq {done.seq} epoch {done.epoch}{note}")
