from django.contrib import admin

from geo.admin_mixins import LargeTableAdminMixin, ReadOnlyAdminMixin
from realtime.models import FeedEvent


@admin.register(FeedEvent)
class FeedEventAdmin(ReadOnlyAdminMixin, LargeTableAdminMixin, admin.ModelAdmin):
    """Written only by database triggers (the log screens replay from): view only, for diagnosis."""

    list_display = ("seq", "type", "at", "district_id", "street_id", "community_id", "team_id", "case_event_id")
    list_filter = ("type",)
    search_fields = ("=seq", "=case_event_id")
