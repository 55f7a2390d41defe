"""Admin: rooms; groups with their members; mutes and bans, with who gave them and when."""

from django.contrib import admin

from realtime.models import Group, GroupMember, Sanction

from .models import ReadMark, Room


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ("name", "title", "created_at")
    search_fields = ("name", "title")
    readonly_fields = ("created_at",)


class MemberInline(admin.TabularInline):
    model = GroupMember
    extra = 0
    fields = ("user", "added_by", "added")
    readonly_fields = ("added",)
    raw_id_fields = ("user", "added_by")


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    list_display = ("name", "title", "owner", "created")
    search_fields = ("name", "title", "owner__username")
    raw_id_fields = ("owner",)
    inlines = [MemberInline]


@admin.register(Sanction)
class SanctionAdmin(admin.ModelAdmin):
    list_display = ("stream", "user", "kind", "by", "created")
    list_filter = ("kind", "created")
    search_fields = ("=stream", "user__username", "by__username")
    raw_id_fields = ("user", "by")


@admin.register(ReadMark)
class ReadMarkAdmin(admin.ModelAdmin):
    list_display = ("user", "stream", "epoch", "seq", "updated")
    search_fields = ("=stream", "user__username")
    raw_id_fields = ("user",)
