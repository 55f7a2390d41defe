"""Chat rooms: a room is a `room:<name>` stream with a title; any valid name works as a stream."""

from __future__ import annotations

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
