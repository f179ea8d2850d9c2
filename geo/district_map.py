"""The district overview map (/map/): boundary as GeoJSON rendered by PostGIS, unit cells as vector tiles."""

from __future__ import annotations

import folium
from django.contrib.gis.db.models.functions import AsGeoJSON, GeomOutputGeoFunc
from django.urls import reverse
from django.utils.html import escape
from django.utils.translation import gettext as _
from folium import plugins

from geo import folium_offline
from geo.models import AdminArea
from geo.selectors import CELL_TILE_MIN_ZOOM
from gridmgmt.names import name_localized

# ~5 m at Shanghai's latitude: invisible at district zooms, and it keeps the page small.
BOUNDARY_SIMPLIFY_DEG = 0.00005


class SimplifyPreserveTopology(GeomOutputGeoFunc):
    def __init__(self, expression, tolerance: float, **extra):
        super().__init__(expression, self._handle_param(tolerance, "tolerance", (int, float)), **extra)


def district_for_map(*, code: str | None) -> AdminArea | None:
    """The district with this code, or the first district (by code) when none is asked for."""
    districts = AdminArea.objects.filter(level=AdminArea.Level.DISTRICT).defer("boundary")
    if code:
        return districts.filter(code=code).first()
    return districts.order_by("code").first()


def boundary_geojson(*, area_id: int, tolerance_deg: float = BOUNDARY_SIMPLIFY_DEG) -> str:
    """The simplified boundary as GeoJSON text, produced by PostGIS (no Python geometry round trip)."""
    return (
        AdminArea.objects.filter(pk=area_id)
        .annotate(gj=AsGeoJSON(SimplifyPreserveTopology("boundary", tolerance_deg), precision=6))
        .values_list("gj", flat=True)
        .get()
    )


def display_name(area: AdminArea) -> str:
    """The area's name in the current language (the English name when there is one)."""
    return name_localized(area)


def cell_tile_url_template() -> str:
    url = reverse("geo:cell-tile", kwargs={"z": 0, "x": 0, "y": 0}).replace("/0/0/0.", "/{z}/{x}/{y}.")
    if folium_offline.display_datum() == "gcj02":
        # Vector tiles are drawn in tile pixels, past the map's CRS (folium_offline.new_map): the endpoint moves
        # each tile's cells onto the GCJ-02 basemap (geo.selectors.tile_datum_shift).
        url += "?datum=gcj02"
    return url


def _html_text(value: str) -> str:
    # Leaflet shows layer names and tooltips as HTML, and folium puts tooltips in a JS template literal.
    return escape(value).replace("`", "&#96;").replace("$", "&#36;")


def build_district_map(district: AdminArea) -> folium.Map:
    geometry, bounds = folium_offline.to_display_geojson(boundary_geojson(area_id=district.pk))
    attributions = [_("演示用合成边界,非官方数据")] if district.is_synthetic else []
    m = folium_offline.new_map(bounds=bounds, attributions=attributions)

    name = _html_text(display_name(district))
    folium.GeoJson(
        {"type": "Feature", "geometry": geometry, "properties": {"code": district.code}},
        name=_("区界:%(name)s") % {"name": name},
        style_function=lambda _feature: {"color": "#c0392b", "weight": 3, "fill": True, "fillOpacity": 0.03},
        tooltip=f"{name}({_html_text(district.code)})",
        control=True,
    ).add_to(m)

    plugins.VectorGridProtobuf(
        cell_tile_url_template(),
        name=_("单元网格(放大到 %(zoom)s 级以上显示)") % {"zoom": CELL_TILE_MIN_ZOOM},
        options={
            "vectorTileLayerStyles": {
                # outlines only: the boundary and any basemap stay readable underneath
                "cells": {"weight": 0.6, "color": "#2c6fbb", "opacity": 0.8, "fill": False},
            },
            "minZoom": CELL_TILE_MIN_ZOOM,
            "maxZoom": folium_offline.MAX_ZOOM,
            "interactive": False,
            # canvas: a z13 tile holds ~2,000 cells, too many SVG nodes
            "rendererFactory": folium.JsCode("L.canvas.tile"),
        },
    ).add_to(m)

    folium.LayerControl(collapsed=False).add_to(m)
    return m
