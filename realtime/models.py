"""The message archive: history that outlives the Redis backlog (realtime/archive.py fills it).

One row per stored message of an archived stream kind (`room:`, `user:`), unique on
(stream, epoch, seq) so that writing a message twice (a worker that died after its insert
but before its queue acknowledgement) keeps one row.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone


class ArchivedMessage(models.Model):
    stream = models.CharField(max_length=80)
    epoch = models.CharField(max_length=32)
    seq = models.BigIntegerField()
    ts = models.BigIntegerField(help_text="The server's receive time, milliseconds since 1970")
    data = models.JSONField(null=True)  # JSON null is stored as SQL NULL
    sender_id = models.CharField(max_length=150, null=True, blank=True)
    sender_name = models.CharField(max_length=150, blank=True, default="")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["stream", "epoch", "seq"], name="rt_archive_stream_epoch_seq"),
        ]
        indexes = [
            models.Index(fields=["stream", "epoch", "-seq"], name="rt_archive_paging"),
            models.Index(fields=["ts"], name="rt_archive_ts"),
        ]

    def __str__(self) -> str:
        return f"{self.stream} {self.epoch}#{self.seq}"

    def as_message(self) -> dict[str, Any]:
        """The `message` object of docs/protocol.md, without "type"."""
        sender = None if self.sender_id is None else {"id": self.sender_id, "name": self.sender_name}
        return {
            "stream": self.stream,
            "seq": self.seq,
            "epoch": self.epoch,
            "ts": self.ts,
            "data": self.data,
            "sender": sender,
        }
