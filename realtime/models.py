"""The message archive (realtime/archive.py fills it), and the groups and sanctions the rights
of private streams and moderation are read from (realtime/standing.py).

The archive keeps one row per stored message of an archived stream kind (`room:`,
`group:`, `dm:`, `user:`), unique on (stream, epoch, seq) so that writing a message twice
(a worker that died after its insert but before its queue acknowledgement) keeps one row.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
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


class Group(models.Model):
    """A private room, the stream `group:<name>`: only its members read and write it
    (docs/protocol.md 1.1, "Private conversations"). It exists once created."""

    name = models.CharField(max_length=64, unique=True)
    title = models.CharField(max_length=120, blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="owned_groups")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"group:{self.name}"

    @property
    def stream(self) -> str:
        return f"group:{self.name}"


class GroupMember(models.Model):
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="group_memberships")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    added = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "user"], name="rt_group_member_once")]

    def __str__(self) -> str:
        return f"{self.user} in {self.group}"


class Sanction(models.Model):
    """A moderator's mute (no publishing) or ban (no publishing; no reading a group) of
    one user on one `room:` or `group:` stream, with who gave it and when."""

    MUTE = "mute"
    BAN = "ban"
    KINDS = [(MUTE, "mute"), (BAN, "ban")]

    stream = models.CharField(max_length=80)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sanctions")
    kind = models.CharField(max_length=8, choices=KINDS)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["stream", "user", "kind"], name="rt_sanction_once")]
        indexes = [models.Index(fields=["stream", "user"], name="rt_sanction_lookup")]

    def __str__(self) -> str:
        return f"{self.kind} of {self.user} on {self.stream}"
