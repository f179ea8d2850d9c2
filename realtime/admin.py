from django.contrib import admin

from geo.admin_mixins import LargeTableAdminMixin, ReadOnlyAdminMixin
from realtime.models import Device, FeedEvent


@admin.register(FeedEvent)
class FeedEventAdmin(ReadOnlyAdminMixin, LargeTableAdminMixin, admin.ModelAdmin):
    """Written only by database triggers (the log screens replay from): view only, for diagnosis."""

    list_display = ("seq", "type", "at", "district_id", "street_id", "community_id", "team_id", "case_event_id")
    list_filter = ("type",)
    search_fields = ("=seq", "=case_event_id")


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    """Trackers are registered here: the identifier is what the tracker sends as `id` (/track/osmand)."""

    list_display = ("identifier", "kind", "user", "active", "last_seen_at")
    list_filter = ("kind", "active")
    search_fields = ("identifier", "user__username")
    raw_id_fields = ("user",)
    readonly_fields = ("last_seen_at", "created_at")
