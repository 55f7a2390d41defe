from django.contrib import admin

from .models import Room


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ("name", "title", "created_at")
    search_fields = ("name", "title")
    readonly_fields = ("created_at",)
