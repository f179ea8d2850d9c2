"""Every list is paginated: GeoJSON FeatureCollections by page, the event feed by an id cursor."""

from django.core.paginator import Paginator
from django.db.models import Count, Window
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework_gis.pagination import GeoJsonPagination


class OnePassPaginator(Paginator):
    """The page's ids and the total in one statement (`COUNT(*) OVER ()` beside the ids), then the page's rows by
    id: for a query that reads all its matches anyway — a search, whose trigram index yields every match before
    any order — a separate COUNT reads them all a second time, and a window beside the whole rows would carry and
    join every match's columns. bench/scale.py (5 M cases, a word in 2,684 of a street's 109,588 cases, load
    average 3–6): a page ~110–360 ms + a count ~100–300 ms → ids and total ~50–95 ms + the page's 50 rows by id
    (README "City scale"). A page past the end, or no match, falls back to Django's paginator (its count and
    its EmptyPage)."""

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
        ids = list(counted.values_list("pk", "_total")[bottom : bottom + self.per_page])
        if not ids:
            return super().page(number)
        self.count = ids[0][1]  # Paginator.count is a cached_property: this is its value
        by_id = {row.pk: row for row in qs.filter(pk__in=[pk for pk, _ in ids])}
        rows = [by_id[pk] for pk, _ in ids if pk in by_id]  # the order of the ids (a row gone since: left out)
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
