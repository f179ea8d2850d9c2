"""Every list is paginated: GeoJSON FeatureCollections by page, the event feed by an id cursor."""

from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework_gis.pagination import GeoJsonPagination


class FeaturePagination(GeoJsonPagination):
    page_size = 50
    max_page_size = 500

    def get_paginated_response_schema(self, view):
        # drf-gis renames `results` to `features` but leaves `results` required: a FeatureCollection has none.
        schema = super().get_paginated_response_schema(view)
        schema["required"] = ["type", "count", "features"]
        return schema


class PagePagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class EventCursorPagination(CursorPagination):
    # The event id is the global, monotonic sequence: a stable cursor even while events are appended.
    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
