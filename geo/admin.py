from django.contrib import admin
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from geo.admin_mixins import LargeTableAdminMixin, OfflineGISModelAdmin, RelatedOnlyLightFilter
from geo.models import AdminArea, Camera, Component, GridCell, ResponsibilityGrid, Speaker
from geo.services import grid_version_bump, speaker_locate

# Boundaries are large multipolygons: never drag them into a list or an autocomplete answer.
_AREA_FKS = ("district", "street", "community")
_AREA_BOUNDARIES = tuple(f"{fk}__boundary" for fk in _AREA_FKS)


@admin.register(AdminArea)
class AdminAreaAdmin(OfflineGISModelAdmin):
    list_display = ("code", "name", "level", "parent", "area_km2", "is_synthetic")
    list_filter = ("level", "is_synthetic")
    search_fields = ("code", "name", "name_en")
    autocomplete_fields = ("parent",)
    list_select_related = ("parent",)
    ordering = ("code",)

    def get_queryset(self, request):
        # The change form loads the deferred boundary on access, with one more query.
        return super().get_queryset(request).defer("boundary", "parent__boundary")

    @admin.display(description=_("面积(平方公里)"), ordering="area_m2")
    def area_km2(self, obj: AdminArea) -> str:
        return f"{obj.area_m2 / 1e6:,.2f}"


@admin.register(ResponsibilityGrid)
class ResponsibilityGridAdmin(LargeTableAdminMixin, OfflineGISModelAdmin):
    list_display = ("code", "name", "district", "street", "community", "team")
    list_filter = (("district", RelatedOnlyLightFilter),)
    search_fields = ("code", "name")
    autocomplete_fields = (*_AREA_FKS, "team")
    list_select_related = (*_AREA_FKS, "team")
    changelist_defer = ("geom", *_AREA_BOUNDARIES)


@admin.register(GridCell)
class GridCellAdmin(LargeTableAdminMixin, OfflineGISModelAdmin):
    list_display = ("code", "district", "street", "community", "responsibility_grid", "area_m2", "row", "col")
    list_filter = (("district", RelatedOnlyLightFilter),)
    search_fields = ("=code", "code")
    raw_id_fields = ("responsibility_grid",)
    autocomplete_fields = _AREA_FKS
    list_select_related = (*_AREA_FKS, "responsibility_grid")
    changelist_defer = ("geom", "center", *_AREA_BOUNDARIES, "responsibility_grid__geom")

    # Cell tiles are cached under the grid's version stamp (geo.selectors.cell_tile_cached): a cell added,
    # edited or deleted here changes the grid as a rebuild does, so the stamp is replaced once it commits.
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        transaction.on_commit(grid_version_bump)

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        transaction.on_commit(grid_version_bump)

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        transaction.on_commit(grid_version_bump)


@admin.register(Camera)
class CameraAdmin(LargeTableAdminMixin, OfflineGISModelAdmin):
    list_display = ("code", "name", "status", "district", "cell", "last_seen_at")
    list_filter = ("status", ("district", RelatedOnlyLightFilter))
    search_fields = ("code", "name")
    raw_id_fields = ("cell",)
    autocomplete_fields = ("district",)
    list_select_related = ("district", "cell")
    changelist_defer = ("district__boundary", "cell__geom", "cell__center")


@admin.register(Speaker)
class SpeakerAdmin(LargeTableAdminMixin, OfflineGISModelAdmin):
    """Street loudspeakers: placed on the map; the cell and district follow from the location on save."""

    list_display = ("code", "name", "gateway", "is_active", "district", "cell", "camera")
    list_filter = ("gateway", "is_active", ("district", RelatedOnlyLightFilter))
    search_fields = ("code", "name")
    raw_id_fields = ("camera",)
    readonly_fields = ("cell", "district")
    fields = ("code", "name", "location", "cell", "district", "camera", "gateway", "url", "is_active")
    list_select_related = ("district", "cell", "camera")
    changelist_defer = ("district__boundary", "cell__geom", "cell__center", "camera__location")

    def save_model(self, request, obj, form, change):
        speaker_locate(speaker=obj)
        super().save_model(request, obj, form, change)


@admin.register(Component)
class ComponentAdmin(LargeTableAdminMixin, OfflineGISModelAdmin):
    list_display = ("code", "name", "major_class", "category", "status", "cell", "maintainer")
    list_filter = ("major_class", "status")
    search_fields = ("=code", "code", "name")
    raw_id_fields = ("cell",)
    autocomplete_fields = ("category", "authority", "owner", "maintainer")
    list_select_related = ("category", "cell", "maintainer")
    changelist_defer = ("cell__geom", "cell__center")
