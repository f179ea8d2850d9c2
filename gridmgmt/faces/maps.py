"""The folium base map every face draws on: the district boundary, nothing loaded from outside.

Page scripts add their own live layers (cells as vector tiles, cases, teams…) to `window.gridmgmtMap`.
"""

from __future__ import annotations

import folium

from geo import district_map, folium_offline
from geo.models import AdminArea


def face_map(*, district: AdminArea | None, boundary_color: str = "#c0392b") -> folium_offline.RenderedMap:
    """The district fitted in view with its boundary outline (or Pudong's rough extent when there is none)."""
    if district is None:
        return folium_offline.render_parts(folium_offline.new_map())
    geometry, bounds = folium_offline.to_display_geojson(district_map.boundary_geojson(area_id=district.pk))
    m = folium_offline.new_map(bounds=bounds)
    folium.GeoJson(
        {"type": "Feature", "geometry": geometry, "properties": {"code": district.code}},
        name="boundary",
        style_function=lambda _f, color=boundary_color: {"color": color, "weight": 2, "fill": False},
        interactive=False,
        control=False,
    ).add_to(m)
    return folium_offline.render_parts(m)
