"""Admin building blocks shared by geo and gridmgmt."""

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.contrib.gis.admin import GISModelAdmin
from django.contrib.gis.db.models import GeometryField

from geo.widgets import OfflineMapWidget


class OfflineGISModelAdmin(GISModelAdmin):
    """GISModelAdmin whose map widget loads vendored OpenLayers and no outside tiles."""

    gis_widget = OfflineMapWidget


class LargeTableAdminMixin:
    """For tables of 10⁴–10⁶ rows: no full COUNT(*), and heavy columns left out of the changelist query.

    `changelist_defer` names fields (may span relations, e.g. "district__boundary") the list never shows.
    """

    show_full_result_count = False
    list_per_page = 50
    changelist_defer: tuple[str, ...] = ()

    def get_changelist(self, request, **kwargs):
        defer = self.changelist_defer
        if not defer:
            return super().get_changelist(request, **kwargs)

        class DeferringChangeList(ChangeList):
            def get_queryset(self, request, exclude_parameters=None):
                return super().get_queryset(request, exclude_parameters).defer(*defer)

        return DeferringChangeList


class RelatedOnlyLightFilter(admin.RelatedOnlyFieldListFilter):
    """RelatedOnlyFieldListFilter that never loads the related model's geometry.

    The stock filter builds its choices from whole rows: for a filter on district that is every district
    boundary, megabytes per changelist page, just to print the names.
    """

    def field_choices(self, field, request, model_admin):
        related = field.related_model
        pks = model_admin.get_queryset(request).distinct().values_list(f"{self.field_path}__pk", flat=True)
        heavy = [f.name for f in related._meta.concrete_fields if isinstance(f, GeometryField)]
        choices = related._default_manager.filter(pk__in=pks).defer(*heavy)
        ordering = self.field_admin_ordering(field, request, model_admin)
        if ordering:
            choices = choices.order_by(*ordering)
        return [(obj.pk, str(obj)) for obj in choices]


class ReadOnlyAdminMixin:
    """View-only admin, for append-only tables."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    show_change_link = True
