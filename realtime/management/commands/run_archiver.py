"""`manage.py run_archiver`: move queued messages of room: and user: streams into the database.

Runs until SIGTERM or Ctrl-C, then finishes the batch in hand and exits. Any number of
workers may run against one Redis; each takes its own entries (realtime/archive.py).
"""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from realtime.archive import Archiver
from realtime.redis_clients import sync_client

log = logging.getLogger("realtime.archive")


class Command(BaseCommand):
    help = "Archive queued room: and user: messages into the database until SIGTERM."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", type=int, default=None, help="messages per transaction (RT_ARCHIVE_BATCH)")
        parser.add_argument("--once", action="store_true", help="archive what is queued now, then exit")

    def handle(self, *args: Any, **options: Any) -> None:
        block = 0.5
        # A command deadline past the blocking wait, so BLMOVE ends before it.
        client = sync_client(timeout=block + 5.0)
        archiver = Archiver(
            client,
            prefix=settings.RT_KEY_PREFIX,
            buckets=settings.RT_BUCKETS,
            batch_size=options["batch"] or settings.RT_ARCHIVE_BATCH,
            visibility=settings.RT_ARCHIVE_VISIBILITY,
            max_attempts=settings.RT_ARCHIVE_MAX_ATTEMPTS,
            block=block,
        )

        def stop(signum: int, frame: FrameType | None) -> None:
            log.info("archiver %s: %s received, finishing the batch in hand", archiver.worker_id, signal.Signals(signum).name)
            archiver.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            if options["once"]:
                count = archiver.drain()
                self.stdout.write(f"archived {count} entries")
            else:
                archiver.run()
        finally:
            client.close()
