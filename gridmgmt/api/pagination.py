"""Every list is paginated: GeoJSON FeatureCollections by page, the event feed by an id cursor."""

from django.core.paginator import Paginator
from django.db.models import Count, Window
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework_gis.pagination import GeoJsonPagination


class OnePassPaginator(Paginator):
    """A page and the total in one statement (`COUNT(*) OVER ()` beside the page's rows): for a query that reads
    all its matches anyway — a search, whose trigram index yields every match before any order — a separate
    COUNT reads them all a second time. bench/scale.py (5 M cases, a word in 2,684 of a street's 109,588 cases,
    load average 5–6): a page ~110–250 ms + a count ~100–300 ms → ~160–240 ms for both (README "City scale"). A page
    past the end, or no match, falls back to Django's paginator (its count and its EmptyPage)."""

    def page(self, number):
        try:
            number = int(number)
        except (TypeError, ValueError):
            return super().page(number)
        if number < 1:
            return super().page(number)
        bottom = (number - 1) * self.per_page
        qs = self.object_list
        ordering = qs.query.order_by or (qs.model._meta.ordering if qs.query.default_ordering else ())
        # "_total" first: the same in every row, so the order is unchanged, but the sort then comes after the
        # window. Otherwise PostgreSQL 15 costs the LIMIT as if the window could stop early and walks a whole
        # ordering index (reported_at) to feed it: 8.4 s instead of ~0.2 s at 5 M cases.
        counted = qs.annotate(_total=Window(Count("pk"))).order_by("_total", *ordering)
        rows = list(counted[bottom : bottom + self.per_page])
        if not rows:
            return super().page(number)
        self.count = rows[0]._total  # Paginator.count is a cached_property: this is its value
        return self._get_page(rows, number, self)


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
