"""Chat rooms (a room is a `room:<name>` stream with a title; any valid name works as a
stream), and how far each person has read the conversations they follow."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from realtime import NAME_PATTERN


class Room(models.Model):
    name = models.CharField(
        max_length=64,
        unique=True,
        validators=[RegexValidator(f"^{NAME_PATTERN}$", "Letters, digits, '_', '.' and '-' only.")],
    )
    title = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return str(self.title or self.name)


class ReadMark(models.Model):
    """How far one person has read one stream (a room, group or DM they follow): the unread
    count is the stream's latest seq past it. A row also means "in my list of conversations"."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="read_marks")
    stream = models.CharField(max_length=80)
    epoch = models.CharField(max_length=32, blank=True, default="")
    seq = models.BigIntegerField(default=0)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "stream"], name="chat_read_mark_once")]

    def __str__(self) -> str:
        return f"{self.user} read {self.stream} to {self.epoch}#{self.seq}"
