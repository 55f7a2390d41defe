"""Admin: archived messages, read-only, searchable, filtered by stream."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import ArchivedMessage


class StreamFilter(admin.SimpleListFilter):
    """The streams that have archived messages (at most the 200 most recently archived)."""

    title = "stream"
    parameter_name = "stream"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = (
            ArchivedMessage.objects.values_list("stream", flat=True).order_by("stream").distinct()[:200]
        )
        return [(name, name) for name in names]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        value = self.value()
        return queryset.filter(stream=value) if value else queryset


@admin.register(ArchivedMessage)
class ArchivedMessageAdmin(admin.ModelAdmin):
    list_display = ("stream", "seq", "epoch", "ts", "sender_name", "sender_id", "created")
    list_filter = (StreamFilter, "created")
    search_fields = ("=stream", "sender_id", "sender_name", "data")
    ordering = ("stream", "epoch", "-seq")
    list_per_page = 100
    show_full_result_count = False
    readonly_fields = ("stream", "epoch", "seq", "ts", "data", "sender_id", "sender_name", "created")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
