"""`manage.py archive_retention`: delete archived messages past their kind's retention.

room:, group: and dm: messages (people's conversations) older than RT_ARCHIVE_DAYS_ROOM
days, user: messages older than
RT_ARCHIVE_DAYS_USER days (by the message's own `ts`), in chunks so that no transaction
holds the table for long. Run it daily (cron, a scheduled job).
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db.models import QuerySet

from realtime.models import ArchivedMessage


def older_than(kind: str, days: int, now_ms: int) -> QuerySet[ArchivedMessage]:
    """The `kind:` messages published more than `days` days before `now_ms`."""
    cutoff = now_ms - days * 86_400_000
    return ArchivedMessage.objects.filter(stream__startswith=f"{kind}:", ts__lt=cutoff)


def delete_older_than(kind: str, days: int, *, now_ms: int | None = None, chunk: int = 5000) -> int:
    """Delete the `kind:` messages published more than `days` days ago; return how many."""
    old = older_than(kind, days, int(time.time() * 1000) if now_ms is None else now_ms)
    deleted = 0
    while True:
        ids = list(old.values_list("pk", flat=True)[:chunk])
        if not ids:
            return deleted
        deleted += ArchivedMessage.objects.filter(pk__in=ids).delete()[0]


class Command(BaseCommand):
    help = "Delete archived messages older than RT_ARCHIVE_DAYS_ROOM / RT_ARCHIVE_DAYS_USER days."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        now_ms = int(time.time() * 1000)
        conversation_days = settings.RT_ARCHIVE_DAYS_ROOM
        retention = [(kind, conversation_days) for kind in ("room", "group", "dm")] + [("user", settings.RT_ARCHIVE_DAYS_USER)]
        for kind, days in retention:
            if options["dry_run"]:
                count = older_than(kind, days, now_ms).count()
                self.stdout.write(f"{kind}: {count} messages older than {days} days would be deleted")
            else:
                count = delete_older_than(kind, days, now_ms=now_ms)
                self.stdout.write(f"{kind}: deleted {count} messages older than {days} days")
